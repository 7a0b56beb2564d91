//! Stack high-water mark: paint the free stack below the current stack pointer with a pattern
//! before a run, then find the lowest word that no longer holds it.

use crate::board::{Board as _, Current};

const PAINT: u32 = 0xC5C5_5C5C;
/// Bytes below the current stack pointer left unpainted (the frame of `paint` itself).
const MARGIN: usize = 256;

#[inline(always)]
fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads the stack pointer; no memory access.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// Paints the unused stack `[bottom, sp − MARGIN)`.
#[inline(never)]
pub fn paint() {
    let (bottom, _) = Current::stack_bounds();
    let end = (sp() - MARGIN) & !3;
    let mut p = (bottom + 3) & !3;
    while p < end {
        // SAFETY: [bottom, sp - MARGIN) is stack memory below every live frame (the linker
        // reserves it for the stack and nothing else lives there).
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used since [`paint`]: from the top of the stack down to the lowest word that
/// was overwritten.
#[inline(never)]
pub fn high_water() -> usize {
    let (bottom, top) = Current::stack_bounds();
    let mut p = (bottom + 3) & !3;
    while p < top {
        // SAFETY: reading stack memory as u32 (every pattern is valid).
        if unsafe { core::ptr::read_volatile(p as *const u32) } != PAINT {
            break;
        }
        p += 4;
    }
    top - p
}
