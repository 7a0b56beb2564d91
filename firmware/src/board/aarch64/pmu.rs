//! The PMU: event counter 0 counts `INST_RETIRED` (event 0x08), the cycle counter counts
//! cycles. Under QEMU's `-icount` the instruction count is exact; on real cores both are.

use core::arch::asm;

/// Starts event counter 0 on instructions retired and the cycle counter.
pub fn enable() {
    // SAFETY: PMU system registers, accessible at EL1.
    unsafe {
        asm!(
            "msr pmevtyper0_el0, {ev}",
            "msr pmccfiltr_el0, xzr",
            "msr pmcntenset_el0, {en}",
            "msr pmcr_el0, {cr}", // E (enable), P and C (reset), LC (64-bit cycle counter)
            "isb",
            ev = in(reg) 0x08u64,
            en = in(reg) (1u64 << 31) | 1,
            cr = in(reg) 0x47u64,
            options(nostack),
        );
    }
}

/// Instructions retired (32-bit counter).
#[inline(always)]
pub fn instructions() -> u64 {
    let v: u64;
    // SAFETY: reads a PMU register.
    unsafe { asm!("isb", "mrs {}, pmevcntr0_el0", out(reg) v, options(nomem, nostack)) };
    v & 0xffff_ffff
}

/// Cycles (64-bit counter).
#[cfg_attr(not(feature = "rpi4"), allow(dead_code))]
#[inline(always)]
pub fn cycles() -> u64 {
    let v: u64;
    // SAFETY: reads a PMU register.
    unsafe { asm!("isb", "mrs {}, pmccntr_el0", out(reg) v, options(nomem, nostack)) };
    v
}
