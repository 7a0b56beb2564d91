//! Test firmware for `ldp-core`: runs every embedded model blob on the board, checks its output
//! against the embedded expected output and prints one `RESULT` line per model.
//!
//! Bare metal only (`target_os = "none"`); the host build is a stub so that `cargo build
//! --workspace` and `cargo clippy --workspace` work. See `firmware/README.md`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", not(feature = "qemu-lm3s"), not(feature = "serve")))]
mod app;
/// Serve mode: the board as a device in the loop (framed protocol on the UART).
#[cfg(all(target_os = "none", feature = "serve"))]
#[path = "serve.rs"]
mod app;
/// `qemu-lm3s` (64 KiB of RAM) runs the streaming executor on one model instead.
#[cfg(all(target_os = "none", feature = "qemu-lm3s"))]
#[path = "stream_app.rs"]
mod app;
#[cfg(target_os = "none")]
mod board;
#[cfg(all(target_os = "none", not(feature = "qemu-lm3s"), not(feature = "serve")))]
mod check;
#[cfg(all(target_os = "none", not(feature = "qemu-lm3s"), not(feature = "serve")))]
mod models;
/// Perf mode on AArch64: the float half of the NEON kernel self-test.
#[cfg(all(target_os = "none", feature = "perf", target_arch = "aarch64"))]
mod neon_selftest;
/// Perf mode (`--features perf`): kernel self-test and per-layer instruction counts.
#[cfg(all(target_os = "none", feature = "perf", not(feature = "qemu-lm3s")))]
mod perf;
#[cfg(target_os = "none")]
mod stack;
/// Perf mode: every embedded model also run by row streaming and checked.
#[cfg(all(target_os = "none", feature = "perf", not(feature = "qemu-lm3s")))]
mod stream_check;
/// Serve mode's UART driver.
#[cfg(all(target_os = "none", feature = "serve"))]
mod uart;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "firmware: this crate runs on bare metal. Build it for a board, e.g.\n  \
         cargo build -p firmware --release --target thumbv7em-none-eabihf --features qemu-m4\n\
         or let xtask do it: `cargo xtask qemu`, `cargo xtask run`, `cargo xtask build-boards`."
    );
    std::process::exit(2);
}
