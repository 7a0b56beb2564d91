//! A flat identity map of the low 4 GiB with 1 GiB blocks: normal write-back cacheable memory
//! where the board has RAM, device memory elsewhere. Without the MMU every access is to device
//! memory (no caches; unaligned accesses fault), which would make the numbers meaningless on a
//! real core.

use core::arch::asm;
use core::ptr::addr_of_mut;

#[repr(C, align(4096))]
struct Table([u64; 512]);

static mut L1: Table = Table([0; 512]);

const VALID_BLOCK: u64 = 0b01;
const ATTR_DEVICE: u64 = 0 << 2; // MAIR index 0
const ATTR_NORMAL: u64 = 1 << 2; // MAIR index 1
const INNER_SHAREABLE: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// MAIR: index 0 = Device-nGnRnE, index 1 = Normal, inner/outer write-back read/write-allocate.
const MAIR: u64 = 0xff << 8;
/// TCR: T0SZ = 32 (4 GiB, lookup starts at level 1), inner/outer write-back walks,
/// inner shareable, 4 KiB granule, TTBR1 walks disabled (EPD1), 32-bit physical addresses.
const TCR: u64 = 32 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23);

/// Builds the table and turns on the MMU and both caches.
///
/// # Safety
/// Call once, at EL1, before anything else runs; `normal[i]` says whether GiB `i` is RAM.
pub unsafe fn enable(normal: [bool; 4]) {
    // SAFETY: nothing else uses the table; single core, MMU still off.
    let table = unsafe { &mut (*addr_of_mut!(L1)).0 };
    for (i, &ram) in normal.iter().enumerate() {
        let base = (i as u64) << 30;
        table[i] = if ram {
            base | VALID_BLOCK | ATTR_NORMAL | INNER_SHAREABLE | AF
        } else {
            base | VALID_BLOCK | ATTR_DEVICE | AF | PXN | UXN
        };
    }
    let ttbr = table.as_ptr() as u64;
    // SAFETY: the standard MMU enable sequence for an identity map; the code runs from RAM that
    // the map keeps at the same address.
    unsafe {
        asm!(
            "msr mair_el1, {mair}",
            "msr tcr_el1, {tcr}",
            "msr ttbr0_el1, {ttbr}",
            "dsb ish",
            "isb",
            "tlbi vmalle1",
            "dsb ish",
            "isb",
            "mrs {tmp}, sctlr_el1",
            "orr {tmp}, {tmp}, #(1 << 0)",  // M: MMU on
            "orr {tmp}, {tmp}, #(1 << 2)",  // C: data cache
            "orr {tmp}, {tmp}, #(1 << 12)", // I: instruction cache
            "bic {tmp}, {tmp}, #(1 << 1)",  // A: no alignment checks
            "msr sctlr_el1, {tmp}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            ttbr = in(reg) ttbr,
            tmp = out(reg) _,
            options(nostack),
        );
    }
}
