//! Shared Cortex-M support: entry point, fault handlers, linker symbols, semihosting exit.

use core::ptr::addr_of;

use cortex_m_rt::{entry, exception, ExceptionFrame};

use super::{Board as _, Current};

#[cfg(feature = "real-cortex-m")]
use defmt_rtt as _;
#[cfg(feature = "qemu-cortex-m")]
use defmt_semihosting as _;

extern "C" {
    // cortex-m-rt's link.x.
    static __vector_table: u32;
    static __sidata: u32;
    static __sdata: u32;
    static __edata: u32;
    static _stack_start: u32;
    static _stack_end: u32;
}

/// Flash used: from the vector table (the start of flash) to the end of `.data`'s load image.
pub fn flash_range() -> (usize, usize) {
    let start = addr_of!(__vector_table) as usize;
    let data_lma = addr_of!(__sidata) as usize;
    let data_len = addr_of!(__edata) as usize - addr_of!(__sdata) as usize;
    (start, data_lma + data_len)
}

/// The stack: from the end of `.bss`/`.uninit` (`_stack_end`) up to `_stack_start`.
pub fn stack_bounds() -> (usize, usize) {
    (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    )
}

/// Exits through semihosting (`SYS_EXIT_EXTENDED`): QEMU exits with `code`; `probe-rs run`
/// stops and reports it.
pub fn semihosting_exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

#[entry]
fn main() -> ! {
    Current::init();
    crate::app::run()
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    // SAFETY: reading the System Control Block's fault status registers.
    let (cfsr, hfsr, bfar, mmfar) = unsafe {
        let scb = &*cortex_m::peripheral::SCB::PTR;
        (
            scb.cfsr.read(),
            scb.hfsr.read(),
            scb.bfar.read(),
            scb.mmfar.read(),
        )
    };
    defmt::error!(
        "HardFault: pc={=u32:#010x} lr={=u32:#010x} xpsr={=u32:#010x} cfsr={=u32:#010x} hfsr={=u32:#010x} bfar={=u32:#010x} mmfar={=u32:#010x}",
        ef.pc(),
        ef.lr(),
        ef.xpsr(),
        cfsr,
        hfsr,
        bfar,
        mmfar
    );
    Current::exit(102)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) -> ! {
    defmt::error!("unexpected exception or interrupt {=i16}", irqn);
    Current::exit(102)
}
