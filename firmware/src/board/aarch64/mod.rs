//! Shared AArch64 (Cortex-A) bare-metal support: boot code, exception vectors, identity-mapped
//! MMU with caches, PMU counters.
//!
//! Boot (`_start`, linked first at the image base): park every core but core 0, drop from EL2 to
//! EL1 if entered at EL2 (the Raspberry Pi firmware does; QEMU `virt` enters at EL1), enable
//! FP/SIMD (`CPACR_EL1`) before any Rust code, set the stack, install the vectors, zero `.bss`,
//! then [`__ldp_a64_main`] turns on the MMU and runs the application.
//!
//! Every exception ends the program: the vector saves nothing, switches to a dedicated
//! exception stack and calls [`__ldp_a64_exception`], which logs `ESR`/`ELR`/`FAR` and exits
//! with 102. An exception taken while handling one goes straight to `__ldp_a64_halt` (exit
//! 103 through semihosting in QEMU; a `wfe` loop on a real board).

use core::arch::{asm, global_asm};
use core::ptr::addr_of;

use super::{Board as _, Current};

pub mod mmu;
pub mod pmu;

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, .Lpark
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    .Lel1
    // EL2 -> EL1: AArch64 at EL1, no FP/SIMD traps, timers and PMU usable at EL1.
    mov     x0, #0x80000000
    msr     hcr_el2, x0
    mov     x0, #0x33ff
    msr     cptr_el2, x0
    msr     hstr_el2, xzr
    mrs     x0, cnthctl_el2
    orr     x0, x0, #3
    msr     cnthctl_el2, x0
    msr     cntvoff_el2, xzr
    mrs     x0, pmcr_el0
    ubfx    x0, x0, #11, #5
    msr     mdcr_el2, x0
    ldr     x0, =0x30d00800
    msr     sctlr_el1, x0
    mov     x0, #0x3c5
    msr     spsr_el2, x0
    adr     x0, .Lel1
    msr     elr_el2, x0
    eret
.Lel1:
    mov     x0, #0x300000
    msr     cpacr_el1, x0
    isb
    ldr     x0, =__stack_top
    mov     sp, x0
    ldr     x0, =__ldp_vectors
    msr     vbar_el1, x0
    isb
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
0:  cmp     x0, x1
    b.hs    1f
    stp     xzr, xzr, [x0], #16
    b       0b
1:  bl      __ldp_a64_main
.Lpark:
    wfe
    b       .Lpark

    .section .text.vectors, "ax"
    .balign 2048
    .global __ldp_vectors
__ldp_vectors:
    .irp    kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    mov     x0, #\kind
    b       __ldp_exc_entry
    .endr

__ldp_exc_entry:
    ldr     x9, =__ldp_exc_busy
    ldr     w10, [x9]
    cbnz    w10, __ldp_a64_halt
    mov     w10, #1
    str     w10, [x9]
    ldr     x10, =__exc_stack_top
    mov     sp, x10
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      __ldp_a64_exception
    b       __ldp_a64_halt

    .section .bss.__ldp_exc_busy, "aw", %nobits
    .balign 4
__ldp_exc_busy:
    .word   0
"#
);

#[cfg(any(feature = "qemu-a53", feature = "qemu-a76"))]
global_asm!(
    r#"
    .section .rodata.__ldp_exit_block, "a"
    .balign 8
__ldp_exit_block:
    .quad   0x20026
    .quad   103
    .section .text.__ldp_a64_halt, "ax"
    .global __ldp_a64_halt
__ldp_a64_halt:
    // Semihosting SYS_EXIT (0x18) with ADP_Stopped_ApplicationExit, status 103; needs no stack.
    mov     x0, #0x18
    ldr     x1, =__ldp_exit_block
    hlt     #0xf000
    b       __ldp_a64_halt
"#
);

#[cfg(not(any(feature = "qemu-a53", feature = "qemu-a76")))]
global_asm!(
    r#"
    .section .text.__ldp_a64_halt, "ax"
    .global __ldp_a64_halt
__ldp_a64_halt:
    wfe
    b       __ldp_a64_halt
"#
);

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __stack_bottom: u8;
    static __stack_top: u8;
}

/// The loaded image (`.text`, `.rodata`, `.data`): what `kernel8.img` holds.
pub fn image_range() -> (usize, usize) {
    (
        addr_of!(__image_start) as usize,
        addr_of!(__image_end) as usize,
    )
}

/// The stack reserved by the linker script.
pub fn stack_bounds() -> (usize, usize) {
    (
        addr_of!(__stack_bottom) as usize,
        addr_of!(__stack_top) as usize,
    )
}

/// Rust entry, called by `_start` on core 0 at EL1 with FP/SIMD enabled and `.bss` zeroed.
#[no_mangle]
extern "C" fn __ldp_a64_main() -> ! {
    // SAFETY: called once, before anything relies on the memory attributes.
    unsafe { mmu::enable(Current::NORMAL_GIB) };
    Current::init();
    crate::app::run()
}

const KINDS: [&str; 16] = [
    "sync (EL1t)",
    "irq (EL1t)",
    "fiq (EL1t)",
    "serror (EL1t)",
    "sync (EL1h)",
    "irq (EL1h)",
    "fiq (EL1h)",
    "serror (EL1h)",
    "sync (lower EL, AArch64)",
    "irq (lower EL, AArch64)",
    "fiq (lower EL, AArch64)",
    "serror (lower EL, AArch64)",
    "sync (lower EL, AArch32)",
    "irq (lower EL, AArch32)",
    "fiq (lower EL, AArch32)",
    "serror (lower EL, AArch32)",
];

/// Every exception: log and exit 102.
#[no_mangle]
extern "C" fn __ldp_a64_exception(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    defmt::error!(
        "exception {=str}: esr={=u64:#x} (class {=u64:#x}) elr={=u64:#x} far={=u64:#x}",
        KINDS[(kind & 15) as usize],
        esr,
        esr >> 26,
        elr,
        far
    );
    Current::exit(102)
}

/// Busy-waits with `wfe` forever (real boards have nowhere to exit to).
#[cfg_attr(not(feature = "rpi4"), allow(dead_code))]
pub fn halt() -> ! {
    loop {
        // SAFETY: waits for an event; no other effect.
        unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
    }
}
