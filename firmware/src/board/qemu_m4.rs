//! QEMU `mps2-an386`: Cortex M4F. Logs with defmt over semihosting; instructions are counted on the
//! host by the `insn_mark` QEMU plugin between the two markers around each forward pass.

use super::{cortex_m_common as cm, Board};

/// The `qemu-m4` board.
pub struct QemuM4;

impl Board for QemuM4 {
    fn init() {}
    fn exit(code: i32) -> ! {
        cm::semihosting_exit(code)
    }
    fn stack_bounds() -> (usize, usize) {
        cm::stack_bounds()
    }
    fn flash_range() -> (usize, usize) {
        cm::flash_range()
    }
}
