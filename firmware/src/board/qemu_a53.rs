//! QEMU `virt -cpu cortex-a53`: bare-metal AArch64. Logs with defmt over semihosting (the same
//! transport as the QEMU Cortex-M boards); counts instructions in-guest with the PMU's
//! `INST_RETIRED` event, which is exact under `-icount`.

use super::{aarch64, Board};

use defmt_semihosting as _;

/// The `qemu-a53` board.
pub struct QemuA53;

impl QemuA53 {
    /// GiB 1 (0x4000_0000..) is RAM; flash, GIC, UART and PCIe are device memory.
    pub const NORMAL_GIB: [bool; 4] = [false, true, false, false];
}

impl Board for QemuA53 {
    const INSN_COUNTER_BITS: u32 = 32;
    fn init() {
        aarch64::pmu::enable();
    }
    fn insn_counter() -> u64 {
        aarch64::pmu::instructions()
    }
    fn exit(code: i32) -> ! {
        semihosting::process::exit(code)
    }
    fn stack_bounds() -> (usize, usize) {
        aarch64::stack_bounds()
    }
    fn flash_range() -> (usize, usize) {
        aarch64::image_range()
    }
}

/// defmt-semihosting takes a critical section around each frame. This firmware never unmasks
/// interrupts (they are masked at reset and stay so) and runs on one core, so there is nothing
/// to exclude.
struct NoInterrupts;
critical_section::set_impl!(NoInterrupts);

// SAFETY: single core, interrupts always masked (see above).
unsafe impl critical_section::Impl for NoInterrupts {
    unsafe fn acquire() -> critical_section::RawRestoreState {}
    unsafe fn release(_: critical_section::RawRestoreState) {}
}
