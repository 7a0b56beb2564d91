//! Raspberry Pi 4 (Cortex-A72), booted by the Pi firmware as `kernel8.img` at 0x80000 (EL2).
//! Logs with defmt over the PL011 UART0 (GPIO14 TX / GPIO15 RX, 115200 8N1, raw defmt frames:
//! decode with `defmt-print`); counts instructions (`INST_RETIRED`) and cycles with the PMU.
//! There is nowhere to exit to: `exit` logs the status and parks the core.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

use super::{aarch64, Board};

/// The `rpi4` board.
pub struct Rpi4;

impl Rpi4 {
    /// The first 3 GiB are RAM (as far as the board has it); GiB 3 holds the peripherals
    /// (0xFC00_0000.., "low peripheral" mode).
    pub const NORMAL_GIB: [bool; 4] = [true, true, true, false];
}

impl Board for Rpi4 {
    const INSN_COUNTER_BITS: u32 = 32;
    fn init() {
        uart::init();
        aarch64::pmu::enable();
    }
    fn insn_counter() -> u64 {
        aarch64::pmu::instructions()
    }
    fn cycle_counter() -> Option<u64> {
        Some(aarch64::pmu::cycles())
    }
    fn exit(code: i32) -> ! {
        defmt::println!("EXIT code={=i32}", code);
        uart::flush();
        aarch64::halt()
    }
    fn stack_bounds() -> (usize, usize) {
        aarch64::stack_bounds()
    }
    fn flash_range() -> (usize, usize) {
        aarch64::image_range()
    }
}

mod uart {
    use super::*;

    const GPIO: usize = 0xFE20_0000;
    const GPFSEL1: usize = GPIO + 0x04;
    const GPIO_PUP_PDN_CNTRL_REG0: usize = GPIO + 0xE4;
    const UART0: usize = 0xFE20_1000;
    const DR: usize = UART0;
    const FR: usize = UART0 + 0x18;
    const IBRD: usize = UART0 + 0x24;
    const FBRD: usize = UART0 + 0x28;
    const LCRH: usize = UART0 + 0x2C;
    const CR: usize = UART0 + 0x30;
    const ICR: usize = UART0 + 0x44;
    const FR_TXFF: u32 = 1 << 5;
    const FR_BUSY: u32 = 1 << 3;

    fn rd(a: usize) -> u32 {
        // SAFETY: a documented BCM2711 peripheral register.
        unsafe { read_volatile(a as *const u32) }
    }
    fn wr(a: usize, v: u32) {
        // SAFETY: a documented BCM2711 peripheral register.
        unsafe { write_volatile(a as *mut u32, v) }
    }

    /// GPIO14/15 to ALT0 (PL011 TXD0/RXD0) without pulls; 115200 8N1 from the 48 MHz UART
    /// clock (`init_uart_clock=48000000`): 48e6 / (16 · 115200) = 26 + 3/64.
    pub fn init() {
        wr(CR, 0);
        let sel = rd(GPFSEL1) & !((7 << 12) | (7 << 15));
        wr(GPFSEL1, sel | (4 << 12) | (4 << 15));
        let pulls = rd(GPIO_PUP_PDN_CNTRL_REG0) & !(0xF << 28);
        wr(GPIO_PUP_PDN_CNTRL_REG0, pulls);
        wr(ICR, 0x7FF);
        wr(IBRD, 26);
        wr(FBRD, 3);
        wr(LCRH, (3 << 5) | (1 << 4)); // 8 bits, FIFOs on
        wr(CR, (1 << 0) | (1 << 8) | (1 << 9)); // UARTEN, TXE, RXE
    }

    pub fn write(bytes: &[u8]) {
        for &b in bytes {
            while rd(FR) & FR_TXFF != 0 {}
            wr(DR, b as u32);
        }
    }

    pub fn flush() {
        while rd(FR) & FR_BUSY != 0 {}
    }
}

/// defmt over the PL011: raw (rzCOBS-framed) defmt frames.
#[defmt::global_logger]
struct UartLogger;

static TAKEN: AtomicBool = AtomicBool::new(false);
static mut ENCODER: defmt::Encoder = defmt::Encoder::new();

fn encoder() -> &'static mut defmt::Encoder {
    // SAFETY: only used between acquire and release, which TAKEN makes exclusive (single core,
    // interrupts masked).
    unsafe { &mut *addr_of_mut!(ENCODER) }
}

// SAFETY: acquire/release bracket every frame; TAKEN rejects re-entry.
unsafe impl defmt::Logger for UartLogger {
    fn acquire() {
        if TAKEN.load(Ordering::Relaxed) {
            panic!("defmt logger taken reentrantly")
        }
        TAKEN.store(true, Ordering::Relaxed);
        encoder().start_frame(uart::write);
    }
    unsafe fn flush() {
        uart::flush();
    }
    unsafe fn release() {
        encoder().end_frame(uart::write);
        TAKEN.store(false, Ordering::Relaxed);
    }
    unsafe fn write(bytes: &[u8]) {
        encoder().write(bytes, uart::write);
    }
}
