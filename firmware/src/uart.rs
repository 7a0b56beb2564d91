//! Polled UART drivers for the serve firmware's byte link (`src/serve.rs`).
//!
//! * mps2 boards (`qemu-m4`, `qemu-m7`, `qemu-m3`): the CMSDK APB UART0 at `0x4000_4000`
//!   (QEMU connects it to the first `-serial`).
//! * `virt` boards (`qemu-a53`, `qemu-a76`): the PL011 UART at `0x0900_0000`, FIFOs on.
//!
//! No interrupts: the serve loop polls. [`Uart::read`] never blocks.

use core::ptr::{read_volatile, write_volatile};

/// The serial link of the serve firmware.
pub struct Uart;

#[cfg(target_arch = "arm")]
mod regs {
    /// CMSDK APB UART0 of the mps2 boards.
    pub const BASE: usize = 0x4000_4000;
    pub const DATA: usize = BASE;
    pub const STATE: usize = BASE + 0x04;
    pub const CTRL: usize = BASE + 0x08;
    pub const BAUDDIV: usize = BASE + 0x10;
    pub const STATE_TX_FULL: u32 = 1 << 0;
    pub const STATE_RX_FULL: u32 = 1 << 1;
    pub const CTRL_TX_EN: u32 = 1 << 0;
    pub const CTRL_RX_EN: u32 = 1 << 1;
}

#[cfg(target_arch = "aarch64")]
mod regs {
    /// PL011 of QEMU `virt`.
    pub const BASE: usize = 0x0900_0000;
    pub const DR: usize = BASE;
    pub const FR: usize = BASE + 0x18;
    pub const IBRD: usize = BASE + 0x24;
    pub const FBRD: usize = BASE + 0x28;
    pub const LCR_H: usize = BASE + 0x2C;
    pub const CR: usize = BASE + 0x30;
    pub const FR_RXFE: u32 = 1 << 4;
    pub const FR_TXFF: u32 = 1 << 5;
}

#[inline(always)]
fn rd(addr: usize) -> u32 {
    // SAFETY: `addr` is a register of the board's UART (device memory, always mapped).
    unsafe { read_volatile(addr as *const u32) }
}

#[inline(always)]
fn wr(addr: usize, v: u32) {
    // SAFETY: as in `rd`.
    unsafe { write_volatile(addr as *mut u32, v) }
}

impl Uart {
    /// Enables transmitter and receiver (115200 8N1 from the boards' UART clocks; QEMU ignores
    /// the rate).
    pub fn init() {
        #[cfg(target_arch = "arm")]
        {
            use regs::*;
            // 25 MHz / 115200.
            wr(BAUDDIV, 217);
            wr(CTRL, CTRL_TX_EN | CTRL_RX_EN);
        }
        #[cfg(target_arch = "aarch64")]
        {
            use regs::*;
            wr(CR, 0);
            // 24 MHz / (16 · 115200) = 13.02: IBRD 13, FBRD 1.
            wr(IBRD, 13);
            wr(FBRD, 1);
            // 8 bits, FIFOs on.
            wr(LCR_H, (3 << 5) | (1 << 4));
            wr(CR, 1 | (1 << 8) | (1 << 9));
        }
    }

    /// The next received byte, if one is there.
    #[inline(always)]
    pub fn read() -> Option<u8> {
        #[cfg(target_arch = "arm")]
        {
            use regs::*;
            if rd(STATE) & STATE_RX_FULL != 0 {
                Some(rd(DATA) as u8)
            } else {
                None
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            use regs::*;
            if rd(FR) & FR_RXFE == 0 {
                Some(rd(DR) as u8)
            } else {
                None
            }
        }
    }

    /// Sends one byte (waits while the transmitter is full).
    #[inline(always)]
    pub fn write(b: u8) {
        #[cfg(target_arch = "arm")]
        {
            use regs::*;
            while rd(STATE) & STATE_TX_FULL != 0 {}
            wr(DATA, b as u32);
        }
        #[cfg(target_arch = "aarch64")]
        {
            use regs::*;
            while rd(FR) & FR_TXFF != 0 {}
            wr(DR, b as u32);
        }
    }
}
