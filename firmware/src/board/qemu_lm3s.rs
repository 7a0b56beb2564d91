//! QEMU `lm3s6965evb`: Cortex-M3 without FPU, 256 KiB flash, 64 KiB RAM. Logs with defmt over
//! semihosting; instructions are counted on the host by the `insn_mark` QEMU plugin between the
//! two markers around the streamed forward pass (`src/stream_app.rs`).

use super::{cortex_m_common as cm, Board};

/// The `qemu-lm3s` board.
pub struct QemuLm3s;

impl Board for QemuLm3s {
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
