//! Polled UART drivers for the serve firmware's byte link (`src/serve.rs`).
//!
//! * mps2 boards (`qemu-m4`, `qemu-m7`, `qemu-m3`): the CMSDK APB UART0 at `0x4000_4000`
//!   (QEMU connects it to the first `-serial`).
//! * `virt` boards (`qemu-a53`, `qemu-a76`): the PL011 UART at `0x0900_0000`, FIFOs on.
//! * `rpi4`: the PL011 UART0 at `0xFE20_1000` (GPIO14/15), set up by the board at 115200 8N1;
//!   it also carries the defmt log, whose frames can only appear between protocol frames (the
//!   host skips bytes until the next magic). Not run on hardware here.
//! * `nrf52840`: the legacy UART0 at `0x4000_2000` on the DK's interface-MCU pins (P0.06 TXD,
//!   P0.08 RXD: the J-Link's virtual COM port), 115200 8N1, no flow control. Not run on
//!   hardware here.
//!
//! No interrupts: the serve loop polls. [`Uart::read`] never blocks.

use core::ptr::{read_volatile, write_volatile};

/// The serial link of the serve firmware.
pub struct Uart;

#[inline(always)]
fn rd(addr: usize) -> u32 {
    // SAFETY: `addr` is a register of the board's UART or GPIO (device memory, always mapped).
    unsafe { read_volatile(addr as *const u32) }
}

#[inline(always)]
fn wr(addr: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { write_volatile(addr as *mut u32, v) }
}

#[cfg(any(feature = "qemu-m4", feature = "qemu-m7", feature = "qemu-m3"))]
impl Uart {
    const BASE: usize = 0x4000_4000;
    const DATA: usize = Self::BASE;
    const STATE: usize = Self::BASE + 0x04;
    const CTRL: usize = Self::BASE + 0x08;
    const BAUDDIV: usize = Self::BASE + 0x10;
    const STATE_TX_FULL: u32 = 1 << 0;
    const STATE_RX_FULL: u32 = 1 << 1;

    /// Enables transmitter and receiver (25 MHz / 217 = 115200 baud; QEMU ignores the rate).
    pub fn init() {
        wr(Self::BAUDDIV, 217);
        wr(Self::CTRL, 0b11); // TX_EN, RX_EN
    }

    /// The next received byte, if one is there.
    #[inline(always)]
    pub fn read() -> Option<u8> {
        if rd(Self::STATE) & Self::STATE_RX_FULL != 0 {
            Some(rd(Self::DATA) as u8)
        } else {
            None
        }
    }

    /// Sends one byte (waits while the transmitter is full).
    #[inline(always)]
    pub fn write(b: u8) {
        while rd(Self::STATE) & Self::STATE_TX_FULL != 0 {}
        wr(Self::DATA, b as u32);
    }
}

#[cfg(any(feature = "qemu-a53", feature = "qemu-a76", feature = "rpi4"))]
impl Uart {
    #[cfg(feature = "rpi4")]
    const BASE: usize = 0xFE20_1000;
    #[cfg(not(feature = "rpi4"))]
    const BASE: usize = 0x0900_0000;
    const DR: usize = Self::BASE;
    const FR: usize = Self::BASE + 0x18;
    const FR_RXFE: u32 = 1 << 4;
    const FR_TXFF: u32 = 1 << 5;

    /// `virt`: 8 bits, FIFOs on, enabled (24 MHz / (16 · 115200): IBRD 13, FBRD 1; QEMU ignores
    /// the rate). `rpi4`: the board's `init` has set the UART up already (it carries the log).
    pub fn init() {
        #[cfg(not(feature = "rpi4"))]
        {
            let (ibrd, fbrd, lcr_h, cr) = (
                Self::BASE + 0x24,
                Self::BASE + 0x28,
                Self::BASE + 0x2C,
                Self::BASE + 0x30,
            );
            wr(cr, 0);
            wr(ibrd, 13);
            wr(fbrd, 1);
            wr(lcr_h, (3 << 5) | (1 << 4));
            wr(cr, 1 | (1 << 8) | (1 << 9)); // UARTEN, TXE, RXE
        }
    }

    /// The next received byte, if one is there.
    #[inline(always)]
    pub fn read() -> Option<u8> {
        if rd(Self::FR) & Self::FR_RXFE == 0 {
            Some(rd(Self::DR) as u8)
        } else {
            None
        }
    }

    /// Sends one byte (waits while the transmit FIFO is full).
    #[inline(always)]
    pub fn write(b: u8) {
        while rd(Self::FR) & Self::FR_TXFF != 0 {}
        wr(Self::DR, b as u32);
    }
}

#[cfg(feature = "nrf52840")]
impl Uart {
    const BASE: usize = 0x4000_2000;
    const TASKS_STARTRX: usize = Self::BASE;
    const TASKS_STARTTX: usize = Self::BASE + 0x008;
    const EVENTS_RXDRDY: usize = Self::BASE + 0x108;
    const EVENTS_TXDRDY: usize = Self::BASE + 0x11C;
    const ENABLE: usize = Self::BASE + 0x500;
    const PSEL_RTS: usize = Self::BASE + 0x508;
    const PSEL_TXD: usize = Self::BASE + 0x50C;
    const PSEL_CTS: usize = Self::BASE + 0x510;
    const PSEL_RXD: usize = Self::BASE + 0x514;
    const RXD: usize = Self::BASE + 0x518;
    const TXD: usize = Self::BASE + 0x51C;
    const BAUDRATE: usize = Self::BASE + 0x524;
    const CONFIG: usize = Self::BASE + 0x56C;
    const P0: usize = 0x5000_0000;
    const TX_PIN: u32 = 6;
    const RX_PIN: u32 = 8;

    /// P0.06 as output high (TXD), P0.08 as input (RXD), 115200 8N1, receiver and transmitter
    /// started.
    pub fn init() {
        wr(Self::P0 + 0x508, 1 << Self::TX_PIN); // OUTSET
        wr(Self::P0 + 0x700 + 4 * Self::TX_PIN as usize, 1); // PIN_CNF: output
        wr(Self::P0 + 0x700 + 4 * Self::RX_PIN as usize, 0); // PIN_CNF: input, buffer on
        wr(Self::PSEL_RTS, 0xFFFF_FFFF);
        wr(Self::PSEL_CTS, 0xFFFF_FFFF);
        wr(Self::PSEL_TXD, Self::TX_PIN);
        wr(Self::PSEL_RXD, Self::RX_PIN);
        wr(Self::BAUDRATE, 0x01D7_E000); // 115200
        wr(Self::CONFIG, 0); // no parity, no flow control
        wr(Self::ENABLE, 4);
        wr(Self::EVENTS_RXDRDY, 0);
        wr(Self::EVENTS_TXDRDY, 0);
        wr(Self::TASKS_STARTRX, 1);
        wr(Self::TASKS_STARTTX, 1);
    }

    /// The next received byte, if one is there (the event is cleared before RXD is read, so
    /// that a byte waiting behind it in the receive FIFO raises it again).
    #[inline(always)]
    pub fn read() -> Option<u8> {
        if rd(Self::EVENTS_RXDRDY) != 0 {
            wr(Self::EVENTS_RXDRDY, 0);
            Some(rd(Self::RXD) as u8)
        } else {
            None
        }
    }

    /// Sends one byte and waits until it has left.
    #[inline(always)]
    pub fn write(b: u8) {
        wr(Self::TXD, b as u32);
        while rd(Self::EVENTS_TXDRDY) == 0 {}
        wr(Self::EVENTS_TXDRDY, 0);
    }
}
