//! nRF52840 (nRF52840-DK): Cortex-M4F at 64 MHz. Logs with defmt over RTT (`probe-rs run`),
//! counts core cycles with the DWT cycle counter (the core has no instruction counter), exits
//! through semihosting, which `probe-rs run` handles.

use super::{cortex_m_common as cm, Board};

/// The `nrf52840` board.
pub struct Nrf52840;

/// NVMC `ICACHECNF`: bit 0 enables the flash instruction cache.
const NVMC_ICACHECNF: *mut u32 = 0x4001_E540 as *mut u32;

impl Board for Nrf52840 {
    const CYCLE_COUNTER_BITS: u32 = 32;
    fn init() {
        // SAFETY: single-threaded start-up; nothing else owns the core peripherals.
        let mut cp = unsafe { cortex_m::Peripherals::steal() };
        cp.DCB.enable_trace();
        cp.DWT.enable_cycle_counter();
        // SAFETY: documented NVMC register; enabling the cache has no other effect.
        unsafe { core::ptr::write_volatile(NVMC_ICACHECNF, 1) };
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
