//! STM32H743ZI (Nucleo-H743ZI): Cortex-M7 at the reset clock (64 MHz HSI). Logs with defmt
//! over RTT (`probe-rs run`), counts core cycles with the DWT cycle counter, runs with the
//! instruction and data caches on, exits through semihosting.

use super::{cortex_m_common as cm, Board};

/// The `h743` board.
pub struct H743;

impl Board for H743 {
    const CYCLE_COUNTER_BITS: u32 = 32;
    fn init() {
        // SAFETY: single-threaded start-up; nothing else owns the core peripherals.
        let mut cp = unsafe { cortex_m::Peripherals::steal() };
        cp.SCB.enable_icache();
        cp.SCB.enable_dcache(&mut cp.CPUID);
        cp.DCB.enable_trace();
        // The M7's DWT ignores writes until its lock access register is unlocked.
        cortex_m::peripheral::DWT::unlock();
        cp.DWT.enable_cycle_counter();
    }
    fn cycle_counter() -> Option<u64> {
        Some(cortex_m::peripheral::DWT::cycle_count() as u64)
    }
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
