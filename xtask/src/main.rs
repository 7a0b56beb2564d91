//! `cargo xtask …`: build, run and measure the firmware.
//!
//! * `test` — every test: fmt, clippy, host tests, `ldp-core` on the embedded targets, `qemu`,
//!   the NEON kernel self-test on `qemu-a53` (`perf --board qemu-a53`).
//! * `qemu` — build and run every QEMU board, print their RESULT lines, `N passed, M failed`.
//! * `run` — quantize a model (or take the bundled example), run it on one QEMU board, and
//!   summarize accuracy, instructions, RAM and flash for a person.
//! * `build-serve` — build the serve firmware (the board as a device for `ldp-quant run
//!   --device`).
//! * `build-boards` — build the real boards (nRF52840-DK, Nucleo-H743ZI, Raspberry Pi 4).
//! * `gen-default` — regenerate `firmware/data/default/` from the golden cases.
//! * `gen-lm3s` — regenerate `firmware/data/qemu-lm3s/` (the streaming board's model and CRC).
//! * `perf` — per-layer instruction counts of the seed LDP int8 on Cortex-M (see `perf.rs`).
//! * `runner` — the cargo runner of the firmware targets (`cargo run -p firmware …`).

mod boards;
mod data;
mod device;
mod elf;
mod npy;
mod perf;
mod qemu;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use boards::{Board, Kind, BOARDS};

const USAGE: &str = "\
cargo xtask <command> [options]

Commands:
  test
        Everything CI checks: cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings,
        cargo test (host: golden tests vs PyTorch, kernels, blobs, int8, streaming, CLI), ldp-core built for
        thumbv6m-none-eabi, thumbv7em-none-eabihf and aarch64-unknown-none (no alloc), every
        QEMU board (as `qemu`), then the kernel self-tests on qemu-m55, qemu-a53 and qemu-a76
        (as `perf --board qemu-m55 --board qemu-a53 --board qemu-a76 --no-seed`), then the serve
        firmware (as `device`). Last line: `N passed, M failed` (steps).
  qemu [--board B]... [--timeout S]
        Build the firmware for every QEMU board (or the given ones), run it in QEMU with the
        bundled models, print the RESULT lines and `N passed, M failed`.
  run [--board B] [--weights W.safetensors --grid HxW --dtype f32|f16|int8
      [--arch ldp|mobilevlm-v1|mobilevlm-v2|mlp2x-gelu] [--calib C.npy]] [--timeout S]
        Quantize (default: the bundled example models), build for the board (default qemu-m4),
        run in QEMU, decode the log and summarize accuracy, instructions, RAM and flash.
  build-serve [--board B]...
        Build the serve firmware (default: qemu-m4, qemu-m7, qemu-m3, qemu-a53, qemu-a76) into
        target/xtask/boards/<board>/serve.elf, for `ldp-quant run --device <board> ...`.
  device
        The device step of `test`: build the serve firmware for qemu-m4, qemu-m3, qemu-a53 and
        run ldp-quant's device tests (golden blobs uploaded and compared with the host, faults).
  build-boards [--board B]...
        Build the real boards (nrf52840, h743, rpi4 with kernel8.img) into target/xtask/boards/.
  fault-test [--board B]...
        Check the failure paths on the QEMU boards: firmware built to panic must exit 101, one
        that executes an undefined instruction must exit 102 (never hang).
  perf [--board B]... [--no-portable] [--no-seed] [--timeout S]
        Per-layer instruction counts of the seed LDP(128,128) 64x64 int8 on qemu-m4 and qemu-m7
        (DSP, portable), qemu-m55 (Helium, DSP, portable), qemu-a53 (NEON) and qemu-a76 (SDOT,
        NEON): PERF lines, summary against CMSIS-NN; int8 kernel self-tests on every board; NEON
        self-test (int8, f32, f16 against the reference kernels) on qemu-a53 and qemu-a76, plus
        FEAT_FP16 f16 and SDOT int8 on qemu-a76.
        SELFTEST lines: firmware/README.md.
  gen-default
        Regenerate firmware/data/default/ from host-tests/golden/ with ldp-quant.
  gen-lm3s
        Regenerate firmware/data/qemu-lm3s/: the synthetic int8 LDP(128, 128) 64x64 blob and the
        CRC-32 of its whole-tensor output on the board's generated input (host-tests example).
  runner ELF
        Cargo runner for the firmware targets: runs a QEMU board's ELF (exact instruction counts),
        hands a real board's ELF to probe-rs.

Environment: LDP_FW_DATA = model data directory for the firmware build (default
firmware/data/default); DEFMT_LOG = firmware log level (xtask defaults it to info).";

/// Paths and programs shared by the commands.
pub struct Ctx {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub cargo: String,
}

impl Ctx {
    fn new() -> Ctx {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if !d.is_empty() => {
                let p = PathBuf::from(d);
                if p.is_absolute() {
                    p
                } else {
                    root.join(p)
                }
            }
            _ => root.join("target"),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        Ctx {
            root,
            target_dir,
            cargo,
        }
    }
    /// Where xtask keeps its outputs: `target/xtask/`.
    pub fn work_dir(&self) -> PathBuf {
        self.target_dir.join("xtask")
    }
}

/// The fields of a blob header xtask needs (see `ldp_core::blob::format::Header`).
pub struct BlobHeader {
    pub arch: &'static str,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
}

/// Reads the header of a model blob.
pub fn blob_header(b: &[u8]) -> Result<BlobHeader, String> {
    if b.len() < 64 || &b[..4] != b"LDPM" {
        return Err("not a model blob (no LDPM magic)".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
    let arch = match b[8] {
        1 => "ldp",
        2 => "mobilevlm-v1",
        3 => "mobilevlm-v2",
        4 => "mlp2x-gelu",
        v => return Err(format!("unknown architecture {v} in the blob header")),
    };
    Ok(BlobHeader {
        arch,
        c_in: u32_at(12),
        h: u32_at(20),
        w: u32_at(24),
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ctx = Ctx::new();
    // Set-up before the first build: what each command needs from outside the repository.
    let needs_qemu = match args.first().map(String::as_str) {
        Some("test" | "qemu" | "run" | "perf" | "fault-test" | "build-serve" | "device") => {
            Some(true)
        }
        Some("build-boards" | "gen-default" | "gen-lm3s") => Some(false),
        _ => None,
    };
    if let Some(qemu) = needs_qemu {
        if let Err(e) = tools::setup(&ctx, qemu) {
            eprintln!("error: set-up failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = match args.first().map(String::as_str) {
        Some("test") => cmd_test(&ctx, &args[1..]),
        Some("qemu") => cmd_qemu(&ctx, &args[1..]),
        Some("run") => cmd_run(&ctx, &args[1..]),
        Some("build-boards") => cmd_build_boards(&ctx, &args[1..]),
        Some("build-serve") => device::cmd_build_serve(&ctx, &args[1..]),
        Some("device") => device::test_step(&ctx),
        Some("gen-default") => data::gen_default(&ctx).map(|_| true),
        Some("gen-lm3s") => cmd_gen_lm3s(&ctx),
        Some("runner") => cmd_runner(&ctx, &args[1..]),
        Some("fault-test") => cmd_fault_test(&ctx, &args[1..]),
        Some("perf") => perf::cmd_perf(&ctx, &args[1..]),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(true)
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Options `--name value` (repeatable) and flags.
struct Opts {
    values: Vec<(String, String)>,
}

impl Opts {
    fn parse(args: &[String], known: &[&str]) -> Result<Opts, String> {
        let mut values = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let (name, inline) = match name.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (name, None),
                };
                if !known.contains(&name) {
                    return Err(format!("unknown option --{name}\n\n{USAGE}"));
                }
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                values.push((name.to_string(), v));
            } else {
                return Err(format!("unexpected argument `{a}`\n\n{USAGE}"));
            }
        }
        Ok(Opts { values })
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .collect()
    }
    fn timeout(&self) -> Result<Duration, String> {
        match self.get("timeout") {
            None => Ok(Duration::from_secs(300)),
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|t| *t > 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("--timeout {s}: expected seconds")),
        }
    }
}

fn boards_from(opts: &Opts, qemu_only: bool) -> Result<Vec<&'static Board>, String> {
    let names = opts.all("board");
    if names.is_empty() {
        return Ok(BOARDS
            .iter()
            .filter(|b| matches!(b.kind, Kind::Qemu { .. }) == qemu_only)
            .collect());
    }
    names
        .iter()
        .map(|n| {
            let b = boards::find(n)
                .ok_or_else(|| format!("unknown board `{n}` (boards: {})", boards::names()))?;
            let is_qemu = matches!(b.kind, Kind::Qemu { .. });
            if qemu_only && !is_qemu {
                return Err(format!(
                    "{n} is a real board: build it with `cargo xtask build-boards --board {n}`"
                ));
            }
            if !qemu_only && is_qemu {
                return Err(format!(
                    "{n} runs in QEMU: use `cargo xtask qemu --board {n}`"
                ));
            }
            Ok(b)
        })
        .collect()
}

/// Builds the firmware for `board` (release) with `features` (the board's feature first) and
/// copies the ELF to `dest`. `env`: variables to set (`Some`) or remove (`None`) for the build;
/// `DEFMT_LOG` defaults to `info`. Returns the build time.
pub fn firmware_build(
    ctx: &Ctx,
    board: &Board,
    features: &str,
    env: &[(&str, Option<&std::ffi::OsStr>)],
    dest: &Path,
) -> Result<Duration, String> {
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root).args([
        "build",
        "--release",
        "-p",
        "firmware",
        "--target",
        board.target,
        "--features",
        features,
    ]);
    if std::env::var_os("DEFMT_LOG").is_none() {
        cmd.env("DEFMT_LOG", "info");
    }
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let start = Instant::now();
    tools::run(&mut cmd)?;
    let took = start.elapsed();
    let built = ctx
        .target_dir
        .join(board.target)
        .join("release")
        .join("firmware");
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::copy(&built, dest).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(took)
}

/// Builds the firmware for `board` (release) and copies the ELF to
/// `target/xtask/boards/<board>/firmware.elf`. Without `data_dir` the build takes
/// `LDP_FW_DATA` from the environment (default: the bundled models).
fn build_firmware(
    ctx: &Ctx,
    board: &Board,
    data_dir: Option<&Path>,
    selftest: Option<&str>,
) -> Result<(PathBuf, Duration), String> {
    let mut env: Vec<(&str, Option<&std::ffi::OsStr>)> =
        vec![("LDP_FW_SELFTEST", selftest.map(std::ffi::OsStr::new))];
    if let Some(d) = data_dir {
        env.push(("LDP_FW_DATA", Some(d.as_os_str())));
    }
    let elf = ctx
        .work_dir()
        .join("boards")
        .join(board.name)
        .join("firmware.elf");
    let took = firmware_build(ctx, board, board.name, &env, &elf)?;
    Ok((elf, took))
}

/// Prints a run's lines: the RESULT lines (clean), then notes and, on failure, the whole log.
fn report_run(board: &Board, run: &qemu::Run) {
    for r in &run.results {
        println!("{}", r.render());
    }
    for s in &run.skips {
        println!("{s}");
    }
    for n in &run.notes {
        eprintln!("  note: {n}");
    }
    if !run.passed() {
        eprintln!("--- {} log ---", board.name);
        for l in &run.log {
            eprintln!("  {l}");
        }
        if !run.stderr.trim().is_empty() {
            eprintln!("--- stderr ---\n{}", run.stderr.trim_end());
        }
        if run.timed_out {
            eprintln!("  QEMU did not finish within the timeout and was stopped");
        } else if run.status != Some(0) {
            eprintln!("  QEMU exit status: {:?}", run.status);
        }
        if run.results.is_empty() {
            eprintln!("  no RESULT line");
        }
        for p in &run.problems {
            eprintln!("  problem: {p}");
        }
    }
}

/// `cargo xtask test`: runs every check in order, continues past failures, sums up.
fn cmd_test(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    if !args.is_empty() {
        return Err(format!("`test` takes no options, got {args:?}"));
    }
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("format", vec!["fmt", "--all", "--", "--check"]),
        (
            "clippy (host)",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            // The docs are the manual: no broken or private links.
            "docs",
            vec![
                "doc",
                "-p",
                "ldp-core",
                "-p",
                "ldp-quant",
                "--no-deps",
                "--config",
                "build.rustdocflags=[\"-D\", \"warnings\"]",
            ],
        ),
        (
            "host tests",
            vec!["test", "--workspace", "--exclude", "firmware"],
        ),
        (
            // Overflowing dimensions only wrap without overflow checks: run them in release.
            "bad dimensions (release)",
            vec!["test", "-p", "ldp-core", "--release", "--test", "bad_dims"],
        ),
        (
            "ldp-core thumbv6m-none-eabi",
            vec!["build", "-p", "ldp-core", "--target", "thumbv6m-none-eabi"],
        ),
        (
            "ldp-core thumbv7em-none-eabihf",
            vec![
                "build",
                "-p",
                "ldp-core",
                "--target",
                "thumbv7em-none-eabihf",
            ],
        ),
        (
            "ldp-core aarch64-unknown-none",
            vec![
                "build",
                "-p",
                "ldp-core",
                "--target",
                "aarch64-unknown-none",
            ],
        ),
        (
            "clippy ldp-core thumbv7em",
            vec![
                "clippy",
                "-p",
                "ldp-core",
                "--target",
                "thumbv7em-none-eabihf",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    // On x86-64, the int8 models and the thread/stack test again with lower kernel levels forced
    // (`LDP_X86`; a level the CPU lacks caps at what it has): every host path at model level,
    // not only in the kernel proptests.
    let forced: &[(&str, &str)] = if cfg!(target_arch = "x86_64") {
        &[
            ("host int8 models, AVX2 kernels forced", "avx2"),
            ("host int8 models, AVX-VNNI kernels forced", "avxvnni"),
        ]
    } else {
        &[]
    };
    let forced_args = vec![
        "test",
        "-p",
        "host-tests",
        "--test",
        "int8",
        "--test",
        "threads",
    ];
    let steps = steps
        .into_iter()
        .map(|(name, cargs)| (name, cargs, None))
        .chain(
            forced
                .iter()
                .map(|&(name, level)| (name, forced_args.clone(), Some(level))),
        );
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut failures = Vec::new();
    for (name, cargs, level) in steps {
        let env = level.map_or(String::new(), |l| format!("LDP_X86={l} "));
        println!("==> {name}: {env}cargo {}", cargs.join(" "));
        let t = Instant::now();
        let mut cmd = Command::new(&ctx.cargo);
        if let Some(l) = level {
            cmd.env("LDP_X86", l);
        }
        let ok = cmd
            .args(&cargs)
            .current_dir(&ctx.root)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?
            .success();
        println!(
            "<== {name}: {} ({:.0} s)",
            if ok { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        if ok {
            passed += 1;
        } else {
            failed += 1;
            failures.push(name.to_string());
        }
    }
    type Step = fn(&Ctx) -> Result<bool, String>;
    let xtask_steps: [(&str, &str, Step); 3] = [
        ("qemu", "QEMU boards: cargo xtask qemu", |ctx| {
            cmd_qemu(ctx, &[])
        }),
        (
            "neon self-test",
            "kernel self-tests: cargo xtask perf --board qemu-m55 --board qemu-a53 --board qemu-a76 --no-seed",
            perf::selftest_a53,
        ),
        (
            "device",
            "serve firmware on qemu-m4, qemu-m3, qemu-a53: upload, run, compare, fault cases",
            device::test_step,
        ),
    ];
    for (name, what, step) in xtask_steps {
        println!("==> {what}");
        let t = Instant::now();
        let ok = step(ctx).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            false
        });
        println!(
            "<== {name}: {} ({:.0} s)",
            if ok { "ok" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        if ok {
            passed += 1;
        } else {
            failed += 1;
            failures.push(name.to_string());
        }
    }
    if !failures.is_empty() {
        println!("failed steps: {}", failures.join(", "));
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn cmd_qemu(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    let opts = Opts::parse(args, &["board", "timeout"])?;
    let timeout = opts.timeout()?;
    let boards = boards_from(&opts, true)?;
    let defmt_print = tools::ensure_defmt_print(ctx)?;
    let plugin = tools::insn_plugin(ctx);
    let (mut passed, mut failed) = (0, 0);
    let total = Instant::now();
    for b in boards {
        println!("== {}: {}", b.name, b.core);
        let outcome = build_firmware(ctx, b, None, None).and_then(|(elf, build)| {
            let run = qemu::run(
                b,
                &elf,
                &qemu::work_dir(&ctx.work_dir(), b),
                timeout,
                &defmt_print,
                plugin.as_deref(),
            )?;
            Ok((build, run))
        });
        match outcome {
            Ok((build, run)) => {
                report_run(b, &run);
                let verdict = if run.passed() { "passed" } else { "FAILED" };
                println!(
                    "{}: {verdict} ({} model(s); build {:.1} s, QEMU {:.1} s)",
                    b.name,
                    run.results.len(),
                    build.as_secs_f64(),
                    run.wall.as_secs_f64()
                );
                if run.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                println!("{}: FAILED (no run)", b.name);
                failed += 1;
            }
        }
    }
    eprintln!("total {:.1} s", total.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// `(arch, dtype)` → `(tolerance, output bytes)` from a data directory's manifest.
fn manifest_info(dir: &Path) -> BTreeMap<(String, String), (String, u64)> {
    let text = std::fs::read_to_string(dir.join("manifest.txt")).unwrap_or_default();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 6 && !f[0].starts_with('#') {
            let out = std::fs::metadata(dir.join(f[4]))
                .map(|m| m.len())
                .unwrap_or(0);
            m.insert(
                (f[0].to_string(), f[1].to_string()),
                (f[5].to_string(), out),
            );
        }
    }
    m
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cmd_run(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    let opts = Opts::parse(
        args,
        &[
            "board", "weights", "arch", "grid", "dtype", "calib", "timeout",
        ],
    )?;
    let timeout = opts.timeout()?;
    let board_name = opts.get("board").unwrap_or("qemu-m4");
    let board = boards::find(board_name)
        .ok_or_else(|| format!("unknown board `{board_name}` (boards: {})", boards::names()))?;
    if board.kind == Kind::Real {
        return Err(format!(
            "{board_name} is a real board; `run` needs a QEMU board. Build it with `cargo xtask build-boards --board {board_name}` and flash it (firmware/README.md)"
        ));
    }
    let total = Instant::now();

    // 1. Quantize.
    println!("[1/5] quantize");
    let data_dir = match opts.get("weights") {
        Some(w) => {
            let grid = opts.get("grid").ok_or("--weights needs --grid HxW")?;
            let dtype = opts
                .get("dtype")
                .ok_or("--weights needs --dtype f32|f16|int8")?;
            if !["f32", "f16", "int8"].contains(&dtype) {
                return Err(format!("--dtype {dtype}: expected f32, f16 or int8"));
            }
            let calib = opts.get("calib").map(Path::new);
            if dtype == "int8" && calib.is_none() {
                eprintln!(
                    "note: int8 without --calib: ldp-quant decides what to do (it may refuse)"
                );
            }
            let weights = std::fs::canonicalize(w).map_err(|e| format!("--weights {w}: {e}"))?;
            let calib = calib
                .map(|c| {
                    std::fs::canonicalize(c).map_err(|e| format!("--calib {}: {e}", c.display()))
                })
                .transpose()?;
            let m = data::ModelArgs {
                weights: &weights,
                arch: opts.get("arch"),
                grid,
                dtype,
                calib: calib.as_deref(),
            };
            let d = data::prepare_run(ctx, &m)?;
            println!(
                "      {} ({} model, test input and host reference)",
                d.dir.display(),
                dtype
            );
            d.dir
        }
        None => {
            for o in ["arch", "grid", "dtype", "calib"] {
                if opts.get(o).is_some() {
                    return Err(format!("--{o} only applies with --weights"));
                }
            }
            let d = match std::env::var_os("LDP_FW_DATA") {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => ctx.root.join("firmware/data/default"),
            };
            println!("      bundled example models: {}", d.display());
            d
        }
    };

    // 2. Build.
    println!(
        "[2/5] build the firmware for {} ({})",
        board.name, board.target
    );
    let (elf, build_time) = build_firmware(ctx, board, Some(&data_dir), None)?;
    println!(
        "      {} ({:.1} s)",
        elf.display(),
        build_time.as_secs_f64()
    );

    // 3-4. Run and decode.
    let defmt_print = tools::ensure_defmt_print(ctx)?;
    let plugin = tools::insn_plugin(ctx);
    println!("[3/5] run in QEMU ({})", board.core);
    let run = qemu::run(
        board,
        &elf,
        &qemu::work_dir(&ctx.work_dir(), board),
        timeout,
        &defmt_print,
        plugin.as_deref(),
    )?;
    let status = match (run.status, run.timed_out) {
        (_, true) => "timed out".to_string(),
        (Some(c), _) => format!("exit status {c}"),
        (None, _) => "killed".to_string(),
    };
    println!("      {status}, {:.1} s", run.wall.as_secs_f64());
    println!("[4/5] decode the defmt log");
    report_run(board, &run);

    // 5. Summary.
    println!("[5/5] summary: {} on {}", board.name, board.core);
    let info = manifest_info(&data_dir);
    for (i, r) in run.results.iter().enumerate() {
        let (arch, dtype) = (r.get("arch").to_string(), r.get("dtype").to_string());
        let metric = run
            .metrics
            .iter()
            .filter(|m| m.get("arch") == Some(&arch) && m.get("dtype") == Some(&dtype))
            .nth(
                run.results[..i]
                    .iter()
                    .filter(|p| p.get("arch") == arch && p.get("dtype") == dtype)
                    .count(),
            );
        let g = |k: &str| metric.and_then(|m| m.get(k)).cloned().unwrap_or_default();
        let e = |k: &str| match g(k).parse::<f64>() {
            Ok(v) => format!("{v:.2e}"),
            Err(_) => g(k),
        };
        let n = |k: &str| g(k).parse::<u64>().unwrap_or(0);
        let (tol, out_bytes) = info
            .get(&(arch.clone(), dtype.clone()))
            .cloned()
            .unwrap_or_default();
        println!(
            "  {arch} {dtype}: {}  ({} parameters, {} MACs per forward pass)",
            if r.ok() { "PASS" } else { "FAIL" },
            thousands(n("params")),
            thousands(n("macs"))
        );
        let accuracy = if tol == "exact" {
            format!(
                "{} of the outputs differ from the host int8 run (bit-identity required)",
                g("mismatches")
            )
        } else {
            format!(
                "relative L2 error {} vs the reference (bound {tol}), max abs error {}",
                e("rel_l2"),
                e("max_abs")
            )
        };
        println!("    accuracy      {accuracy}");
        let insns = r.num("instructions");
        let per_mac = if n("macs") > 0 {
            format!(", {:.2} per MAC", insns as f64 / n("macs") as f64)
        } else {
            String::new()
        };
        println!(
            "    instructions  {} per forward pass{per_mac} (exact count in QEMU)",
            thousands(insns)
        );
        println!(
            "    RAM           {} B scratch arena + {} B stack (high-water mark) + {} B output buffer",
            thousands(r.num("arena_bytes")),
            thousands(r.num("stack_bytes")),
            thousands(out_bytes)
        );
        let flash = r.num("flash_bytes");
        let blob = n("blob_bytes");
        println!(
            "    flash         {} B = {} B code and constants + {} B model",
            thousands(flash),
            thousands(flash.saturating_sub(blob)),
            thousands(blob)
        );
    }
    let ok = run.passed();
    println!(
        "{} ({:.1} s in all)",
        if ok { "all checks passed" } else { "FAILED" },
        total.elapsed().as_secs_f64()
    );
    Ok(ok)
}

fn objcopy_tool() -> Option<PathBuf> {
    for t in ["rust-objcopy", "llvm-objcopy"] {
        let ok = Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(PathBuf::from(t));
        }
    }
    None
}

fn cmd_build_boards(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    let opts = Opts::parse(args, &["board"])?;
    let boards = boards_from(&opts, false)?;
    let total = Instant::now();
    for b in boards {
        println!("== {}: {}", b.name, b.core);
        let (elf_path, took) = build_firmware(ctx, b, None, None)?;
        let elf = elf::Elf::read(&elf_path)?;
        let (flash, ram) = elf.memory_use();
        println!("   {} ({:.1} s)", elf_path.display(), took.as_secs_f64());
        println!(
            "   flash image {} B, static RAM {} B (.data + .bss incl. the arena; the stack comes on top)",
            thousands(flash),
            thousands(ram)
        );
        for s in &elf.sections {
            let place = match (s.nobits, s.writable) {
                (true, _) => "RAM",
                (false, true) => "flash+RAM",
                (false, false) => "flash",
            };
            println!("     {:<14} {:>12} B  {place}", s.name, thousands(s.size));
        }
        if b.name == "rpi4" {
            let img = elf.to_binary()?;
            let path = elf_path.with_file_name("kernel8.img");
            std::fs::write(&path, &img).map_err(|e| format!("{}: {e}", path.display()))?;
            // Cross-check against an objcopy when there is one.
            let check = match objcopy_tool() {
                Some(t) => {
                    let tmp = elf_path.with_file_name("kernel8.objcopy.img");
                    let ok = Command::new(&t)
                        .args(["-O", "binary"])
                        .arg(&elf_path)
                        .arg(&tmp)
                        .status()
                        .is_ok_and(|s| s.success());
                    let same = ok && std::fs::read(&tmp).ok().as_deref() == Some(img.as_slice());
                    let _ = std::fs::remove_file(&tmp);
                    if same {
                        format!("identical to `{} -O binary`", t.display())
                    } else {
                        format!("WARNING: differs from `{} -O binary`", t.display())
                    }
                }
                None => "no objcopy here to compare with".into(),
            };
            println!(
                "   {} ({} B; {check})",
                path.display(),
                thousands(img.len() as u64)
            );
        }
    }
    println!("built in {:.1} s", total.elapsed().as_secs_f64());
    Ok(true)
}

/// The QEMU board for an ELF without a board marker, from the target directory in its path.
fn board_from_path(elf: &Path) -> Option<&'static Board> {
    let s = elf.to_string_lossy();
    let name = if s.contains("/thumbv7em-none-eabihf/") {
        "qemu-m4"
    } else if s.contains("/thumbv8m.main-none-eabihf/") {
        "qemu-m55"
    } else if s.contains("/thumbv7m-none-eabi/") {
        "qemu-m3"
    } else if s.contains("/aarch64-unknown-none/") {
        "qemu-a53"
    } else {
        return None;
    };
    boards::find(name)
}

fn cmd_runner(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    let elf_path = PathBuf::from(args.first().ok_or("runner: no ELF given")?);
    let elf = elf::Elf::read(&elf_path)?;
    let marked = boards::from_symbols(elf.symbols.iter().map(String::as_str));
    let board = match marked.or_else(|| board_from_path(&elf_path)) {
        Some(b) => b,
        None => {
            return Err(format!(
                "runner: cannot tell the board of {}",
                elf_path.display()
            ))
        }
    };
    if board.kind == Kind::Real {
        let chip = match board.name {
            "nrf52840" => "nRF52840_xxAA",
            "h743" => "STM32H743ZITx",
            _ => {
                let img = elf_path.with_file_name("kernel8.img");
                std::fs::write(&img, elf.to_binary()?)
                    .map_err(|e| format!("{}: {e}", img.display()))?;
                println!(
                    "wrote {}: copy it to the SD card's boot partition (see firmware/README.md, Raspberry Pi 4)",
                    img.display()
                );
                return Ok(true);
            }
        };
        let mut cmd = Command::new("probe-rs");
        cmd.args(["run", "--chip", chip]).arg(&elf_path);
        return tools::run(&mut cmd)
            .map(|_| true)
            .map_err(|e| format!("{e}\n(probe-rs: cargo install probe-rs-tools --locked)"));
    }
    let defmt_print = tools::ensure_defmt_print(ctx)?;
    let plugin = tools::insn_plugin(ctx);
    let timeout = match std::env::var("LDP_QEMU_TIMEOUT") {
        Ok(s) => Duration::from_secs_f64(s.parse().unwrap_or(300.0)),
        Err(_) => Duration::from_secs(300),
    };
    let run = qemu::run(
        board,
        &elf_path,
        &qemu::work_dir(&ctx.work_dir(), board),
        timeout,
        &defmt_print,
        plugin.as_deref(),
    )?;
    // The whole log, with the RESULT lines carrying the exact instruction counts.
    let mut results = run.results.iter();
    for l in &run.log {
        if qemu::ResultLine::parse(l).is_some() {
            if let Some(r) = results.next() {
                println!("{}", r.render());
                continue;
            }
        }
        println!("{l}");
    }
    for n in &run.notes {
        eprintln!("note: {n}");
    }
    for p in &run.problems {
        eprintln!("problem: {p}");
    }
    if !run.stderr.trim().is_empty() {
        eprintln!("{}", run.stderr.trim_end());
    }
    if run.timed_out {
        eprintln!("QEMU timed out");
    }
    Ok(run.status == Some(0) && run.problems.is_empty())
}

fn cmd_fault_test(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    let opts = Opts::parse(args, &["board", "timeout"])?;
    let timeout = match opts.get("timeout") {
        Some(_) => opts.timeout()?,
        None => Duration::from_secs(60),
    };
    let boards = boards_from(&opts, true)?;
    let defmt_print = tools::ensure_defmt_print(ctx)?;
    let (mut passed, mut failed) = (0, 0);
    for b in boards {
        for (mode, want) in [("panic", 101), ("fault", 102)] {
            let outcome = build_firmware(ctx, b, None, Some(mode)).and_then(|(elf, _)| {
                qemu::run(
                    b,
                    &elf,
                    &ctx.work_dir().join("fault-test").join(b.name),
                    timeout,
                    &defmt_print,
                    None,
                )
            });
            match outcome {
                Ok(run) if run.status == Some(want) => {
                    let last = run.log.last().cloned().unwrap_or_default();
                    println!("{} {mode}: exit {want} as expected ({last})", b.name);
                    passed += 1;
                }
                Ok(run) => {
                    println!(
                        "{} {mode}: FAILED: exit status {:?}{}, expected {want}",
                        b.name,
                        run.status,
                        if run.timed_out { " (timed out)" } else { "" }
                    );
                    for l in &run.log {
                        println!("  {l}");
                    }
                    failed += 1;
                }
                Err(e) => {
                    println!("{} {mode}: FAILED: {e}", b.name);
                    failed += 1;
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// `cargo xtask gen-lm3s`: runs `host-tests/examples/gen_lm3s.rs`, which quantizes the synthetic
/// model, computes the whole-tensor output's CRC-32 (and checks that streaming reproduces it)
/// and writes `firmware/data/qemu-lm3s/`.
fn cmd_gen_lm3s(ctx: &Ctx) -> Result<bool, String> {
    let dir = ctx.root.join("firmware").join("data").join("qemu-lm3s");
    let mut cmd = Command::new(&ctx.cargo);
    cmd.current_dir(&ctx.root)
        .args([
            "run",
            "--release",
            "-p",
            "host-tests",
            "--example",
            "gen_lm3s",
            "--",
        ])
        .arg(&dir);
    tools::run(&mut cmd)?;
    Ok(true)
}
