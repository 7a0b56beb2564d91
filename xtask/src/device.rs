//! The serve firmware (issue 21, the board as a device in the loop): `cargo xtask build-serve`
//! and the `device` step of `cargo xtask test`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::boards::{self, Board, Kind};
use crate::{tools, Ctx, Opts};

/// The boards with a serve mode (firmware/build.rs `SERVE_BOARDS`; the real ones are built only).
pub const SERVE_BOARDS: &[&str] = &[
    "qemu-m4", "qemu-m7", "qemu-m3", "qemu-a53", "qemu-a76", "nrf52840", "rpi4",
];
/// The boards the `device` test step checks.
pub const TEST_BOARDS: &[&str] = &["qemu-m4", "qemu-m3", "qemu-a53"];

/// Builds the serve firmware for `board` into `target/xtask/boards/<board>/serve.elf`.
pub fn build_serve(ctx: &Ctx, board: &Board) -> Result<(PathBuf, Duration), String> {
    if !SERVE_BOARDS.contains(&board.name) {
        return Err(format!(
            "{} has no serve mode yet (boards: {})",
            board.name,
            SERVE_BOARDS.join(", ")
        ));
    }
    let elf = ctx
        .work_dir()
        .join("boards")
        .join(board.name)
        .join("serve.elf");
    let took = crate::firmware_build(
        ctx,
        board,
        &format!("{},serve", board.name),
        &[("LDP_FW_SELFTEST", None)],
        &elf,
    )?;
    Ok((elf, took))
}

/// `cargo xtask build-serve [--board B]...` (default: every board with a serve mode).
pub fn cmd_build_serve(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    let opts = Opts::parse(args, &["board"])?;
    let mut names = opts.all("board");
    if names.is_empty() {
        names = SERVE_BOARDS.to_vec();
    }
    // The instruction-count plugin, which `ldp-quant run --device` loads from target/xtask/.
    if tools::insn_plugin(ctx).is_none() {
        eprintln!(
            "note: no C compiler for the QEMU plugin: Cortex-M runs will not count instructions"
        );
    }
    for n in names {
        let b = boards::find(n)
            .ok_or_else(|| format!("unknown board `{n}` (boards: {})", boards::names()))?;
        let (elf, took) = build_serve(ctx, b)?;
        println!(
            "{}: {} ({:.1} s)",
            b.name,
            elf.display(),
            took.as_secs_f64()
        );
        if let Kind::Qemu { .. } = b.kind {
            println!(
                "  run: ldp-quant run --device {} --model m.ldp --input x.npy -o y.npy --compare",
                b.name
            );
        } else {
            if b.name == "rpi4" {
                let img = elf.with_file_name("serve-kernel8.img");
                let bin = crate::elf::Elf::read(&elf)?.to_binary()?;
                std::fs::write(&img, bin).map_err(|e| format!("{}: {e}", img.display()))?;
                println!(
                    "  {} (copy it to the SD card as kernel8.img)",
                    img.display()
                );
            }
            println!(
                "  flash it once (firmware/README.md, Serve mode), then: ldp-quant run --device serial:/dev/ttyACM0 --model m.ldp --input x.npy -o y.npy --compare"
            );
        }
    }
    Ok(true)
}

/// The `device` step of `cargo xtask test`: builds the serve firmware for the test boards and
/// runs `ldp-quant`'s device tests (`ldp-quant/tests/device.rs`, ignored in a plain `cargo
/// test`) against them: golden blobs of every architecture and dtype vs the host, and the
/// fault cases.
pub fn test_step(ctx: &Ctx) -> Result<bool, String> {
    let mut build = Vec::new();
    for n in TEST_BOARDS {
        let b = boards::find(n).ok_or_else(|| format!("unknown board {n}"))?;
        let (elf, took) = build_serve(ctx, b)?;
        build.push(format!("{n} {:.0} s", took.as_secs_f64()));
        let _ = elf;
    }
    println!("serve firmware built ({})", build.join(", "));
    if tools::insn_plugin(ctx).is_none() {
        return Err("the QEMU instruction-count plugin could not be built (no C compiler)".into());
    }
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .args([
            "test",
            "-p",
            "ldp-quant",
            "--test",
            "device",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .env("LDP_DEVICE_TEST_BOARDS", TEST_BOARDS.join(","))
        .env("CARGO_TARGET_DIR", &ctx.target_dir);
    let t = Instant::now();
    let ok = tools::run(&mut cmd).is_ok();
    println!("device tests: {:.0} s", t.elapsed().as_secs_f64());
    Ok(ok)
}
