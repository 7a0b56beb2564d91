//! Board support: one module per board behind the [`Board`] trait, selected by the board
//! feature. [`Current`] is the board this image was built for.
//!
//! Cortex-M boards share [`cortex_m_common`]; Cortex-A boards share [`aarch64`] (boot code,
//! exception vectors, MMU, PMU).

/// What the application needs from a board.
pub trait Board {
    /// Width of [`Board::insn_counter`] (it wraps at `2^bits`).
    const INSN_COUNTER_BITS: u32 = 64;
    /// Width of [`Board::cycle_counter`].
    const CYCLE_COUNTER_BITS: u32 = 64;
    /// Brings up logging and counters. Called once, first.
    fn init();
    /// Instructions retired, read in-guest; `0` where the core cannot count them (Cortex-M: the
    /// host counts with the QEMU plugin between the two [`mark`]s instead).
    fn insn_counter() -> u64 {
        0
    }
    /// Core clock cycles where a real cycle counter exists (real boards), else `None`.
    fn cycle_counter() -> Option<u64> {
        None
    }
    /// Ends the program with `code` (semihosting in QEMU and under a debug probe).
    fn exit(code: i32) -> !;
    /// `(lowest, highest)` address of the stack region (the stack grows down from `highest`).
    fn stack_bounds() -> (usize, usize);
    /// `[start, end)` of the non-volatile image (flash; the loaded image on Cortex-A): code,
    /// constants, the load image of `.data`, and the model data when it is placed in flash.
    fn flash_range() -> (usize, usize);
}

extern "C" {
    // Defined by every board's linker script around the `.ldp_data` section (the embedded
    // blobs and test vectors).
    static __ldp_data_start: u8;
    static __ldp_data_end: u8;
}

/// `[start, end)` of the embedded model data (`.ldp_data`).
pub fn model_data_range() -> (usize, usize) {
    (
        core::ptr::addr_of!(__ldp_data_start) as usize,
        core::ptr::addr_of!(__ldp_data_end) as usize,
    )
}

/// Bytes of the image without the embedded model data: code and constants.
pub fn code_bytes() -> usize {
    let (fs, fe) = Current::flash_range();
    let (ds, de) = model_data_range();
    let overlap = fe.min(de).saturating_sub(fs.max(ds));
    (fe - fs) - overlap
}

/// `end − start` for a counter that wraps at `2^bits`.
pub fn delta(start: u64, end: u64, bits: u32) -> u64 {
    let d = end.wrapping_sub(start);
    if bits >= 64 {
        d
    } else {
        d & ((1u64 << bits) - 1)
    }
}

/// Executes the marker no-op counted by `tools/qemu-insn/insn_mark.c` (`mov r11, r11` on
/// Thumb, `mov xzr, xzr` on AArch64). Architecturally a no-op.
///
/// On Thumb the marker sits at an 8-byte aligned address. QEMU 7.2's Thumb translator peeks at
/// the next halfword after an instruction that ends within 3 bytes of a target page boundary
/// (1 KiB pages on M-profile), and its plugin API then reports that instruction as 4 bytes long:
/// a marker at page offset 0x3fc is not recognized by `insn_mark` (seen at 0xeffc and 0xfbfc,
/// and in the application firmware when its code grew). Aligned to 8 bytes it can never be
/// there (the alignment may add up to three `nop`s before it, counted in the previous segment).
#[inline(always)]
pub fn mark() {
    // SAFETY: alignment padding and register moves without effect.
    unsafe {
        #[cfg(target_arch = "arm")]
        core::arch::asm!(
            ".p2align 3",
            ".inst.n 0x46db",
            options(nostack, preserves_flags)
        );
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!(".inst 0xaa1f03ff", options(nostack, preserves_flags));
    }
}

#[cfg(target_arch = "arm")]
pub mod cortex_m_common;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;

#[cfg(feature = "qemu-m4")]
mod qemu_m4;
#[cfg(feature = "qemu-m4")]
pub use qemu_m4::QemuM4 as Current;

#[cfg(feature = "qemu-m7")]
mod qemu_m7;
#[cfg(feature = "qemu-m7")]
pub use qemu_m7::QemuM7 as Current;

#[cfg(feature = "qemu-m55")]
mod qemu_m55;
#[cfg(feature = "qemu-m55")]
pub use qemu_m55::QemuM55 as Current;

#[cfg(feature = "qemu-m3")]
mod qemu_m3;
#[cfg(feature = "qemu-m3")]
pub use qemu_m3::QemuM3 as Current;

#[cfg(feature = "qemu-lm3s")]
mod qemu_lm3s;
#[cfg(feature = "qemu-lm3s")]
pub use qemu_lm3s::QemuLm3s as Current;

// `qemu-a76` is the same QEMU `virt` board with a Cortex-A76 (FEAT_FP16).
#[cfg(any(feature = "qemu-a53", feature = "qemu-a76"))]
mod qemu_a53;
#[cfg(any(feature = "qemu-a53", feature = "qemu-a76"))]
pub use qemu_a53::QemuA53 as Current;

#[cfg(feature = "nrf52840")]
mod nrf52840;
#[cfg(feature = "nrf52840")]
pub use nrf52840::Nrf52840 as Current;

#[cfg(feature = "h743")]
mod h743;
#[cfg(feature = "h743")]
pub use h743::H743 as Current;

#[cfg(feature = "rpi4")]
mod rpi4;
#[cfg(feature = "rpi4")]
pub use rpi4::Rpi4 as Current;

/// Logs the panic and exits with 101. A panic while panicking (e.g. inside the logger) exits
/// without logging.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::sync::atomic::{AtomicBool, Ordering};
    static PANICKING: AtomicBool = AtomicBool::new(false);
    if !PANICKING.load(Ordering::Relaxed) {
        PANICKING.store(true, Ordering::Relaxed);
        defmt::error!("panic: {}", defmt::Display2Format(info));
    }
    Current::exit(101)
}
