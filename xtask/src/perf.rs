//! `cargo xtask perf`: exact per-layer instruction counts of the seed LDP block, int8, on the
//! QEMU boards `qemu-m4`/`qemu-m7` (DSP and portable kernels), `qemu-m55` (Helium, DSP and
//! portable), `qemu-a53` (NEON) and `qemu-a76` (SDOT and NEON), next to CMSIS-NN's figures; plus
//! the kernel self-tests (int8 on every board; f32/f16 NEON on the Cortex-A boards).
//!
//! 1. Data (`target/xtask/perf-data/`, made once): a deterministic synthetic `LDP(128, 128)`
//!    (pseudo-random weights written as safetensors here), quantized to int8 by `ldp-quant
//!    convert` with a 2-sample synthetic calibration batch, a synthetic 64×64 input, and the
//!    host's int8 output of it (`ldp-quant run`) as the expected output (bit-identical).
//! 2. For each measured board, the firmware built in the board's variants ([`variants`]: e.g.
//!    `--features qemu-m4,perf` and `qemu-m4,perf-portable`; `qemu-m55,perf`/`perf-dsp`/
//!    `perf-portable`; `qemu-a76,perf`/`perf-neon`) with the seed data, each run once in QEMU
//!    with the instruction-count plugin. The firmware (`firmware/src/perf.rs`) self-tests the
//!    kernels, then runs the model with a marker after each layer.
//! 3. `qemu-m55`, `qemu-a53` and `qemu-a76` also run the self-test with the bundled int8 models
//!    (int8 pointwise, depthwise, LayerNorm, ADD bit for bit; on AArch64 f32/f16 pointwise
//!    within `1e-5` of the largest output, depthwise bit for bit). `cargo xtask test` runs only
//!    these ([`selftest_a53`], `--no-seed`).
//! 4. Output: one `PERF` line per layer and a `layer=total` line per board (its fastest build),
//!    then a table for people. Exit status: failure when a self-test or a bit-identity check
//!    fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::boards::{self, Board};
use crate::qemu::{self, parse_kv, ResultLine};
use crate::{data, npy, thousands, tools, Ctx, Opts};

/// Boards measured on the seed block (it needs the 4 MiB of RAM of the mps2 boards or the
/// Cortex-A boards' RAM).
const MEASURED: [&str; 5] = ["qemu-m4", "qemu-m7", "qemu-m55", "qemu-a53", "qemu-a76"];

/// The firmware variants measured on `board`: `(cargo feature, column label)`, the board's
/// fastest build first (its `PERF` lines), then the baselines.
fn variants(board: &str) -> &'static [(&'static str, &'static str)] {
    match board {
        "qemu-a53" => &[("perf", "NEON")],
        "qemu-a76" => &[("perf", "SDOT"), ("perf-neon", "NEON")],
        "qemu-m55" => &[
            ("perf", "MVE"),
            ("perf-dsp", "DSP"),
            ("perf-portable", "portable"),
        ],
        _ => &[("perf", "DSP"), ("perf-portable", "portable")],
    }
}

/// Goals in instructions per MAC: `(pointwise, depthwise, whole block)`.
fn goals(board: &str) -> (f64, f64, f64) {
    match board {
        "qemu-a53" => (f64::NAN, f64::NAN, f64::NAN),
        "qemu-a76" => (0.15, 1.0, 0.35),
        "qemu-m55" => (0.25, 1.0, 0.45),
        _ => (1.0, 4.0, 1.6),
    }
}
/// Boards that only run the self-test and the bundled int8 models.
const SELFTEST_ONLY: [&str; 3] = ["qemu-m55", "qemu-a53", "qemu-a76"];

/// The seed block: `LDP(128, 128)` on 64×64.
const C: usize = 128;
const GRID: usize = 64;
/// Changes whenever the generated data would change (it is regenerated then).
const DATA_VERSION: &str =
    "perf-data v1: ldp 128->128 64x64, weights seed 0x1d9, calib 2x seed 0x5eed, per-tensor input";

/// CMSIS-NN int8 through TFLite Micro in the same QEMU boards (GCC 12 -O3, DSP on),
/// instructions per MAC (padded taps counted), see docs/PERFORMANCE.md ("The CMSIS-NN figures"):
/// `(layer, qemu-m4, qemu-m7, qemu-m55 with MVE)`.
const CMSIS_NN: [(&str, f64, f64, f64); 5] = [
    ("pointwise1", 1.739, 1.706, 0.282),
    ("depthwise1", 8.732, 8.576, 2.327),
    ("pointwise2", 1.739, 1.706, 0.282),
    ("depthwise2", 8.735, 8.581, 2.328),
    ("pointwise3", 1.741, 1.708, 0.282),
];

fn cmsis(layer: &str, board: &str) -> Option<f64> {
    let row = CMSIS_NN.iter().find(|r| r.0 == layer)?;
    match board {
        "qemu-m4" => Some(row.1),
        "qemu-m7" => Some(row.2),
        "qemu-m55" => Some(row.3),
        _ => None,
    }
}

const USAGE: &str = "\
cargo xtask perf [--board qemu-m4|qemu-m7|qemu-m55|qemu-a53|qemu-a76]... [--no-portable] [--no-seed] [--timeout S]
    Per-layer instruction counts of the seed LDP(128,128) 64x64 int8 on every board above, in
    the board's builds (DSP/portable; MVE/DSP/portable on qemu-m55; SDOT/NEON on qemu-a76; only
    the first with --no-portable), the kernel self-tests there and, on qemu-m55/a53/a76, with
    the bundled models too (--no-seed: only those). Prints SELFTEST and PERF lines and a summary
    against CMSIS-NN.";

/// One measured segment (layer).
#[derive(Clone, Debug)]
pub struct Seg {
    pub layer: String,
    pub kind: String,
    pub macs: u64,
    pub instructions: u64,
}

/// What one perf firmware run gave.
pub struct PerfRun {
    /// `failures=` of the SELFTEST line (`None`: no SELFTEST line).
    pub selftest_failures: Option<u64>,
    pub selftest_line: String,
    /// Per model: `(arch, segments, RESULT)`.
    pub models: Vec<(String, Vec<Seg>, ResultLine)>,
    pub passed: bool,
}

/// `cargo xtask perf`.
pub fn cmd_perf(ctx: &Ctx, args: &[String]) -> Result<bool, String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(true);
    }
    let no_portable = args.iter().any(|a| a == "--no-portable");
    let no_seed = args.iter().any(|a| a == "--no-seed");
    let rest: Vec<String> = args
        .iter()
        .filter(|a| *a != "--no-portable" && *a != "--no-seed")
        .cloned()
        .collect();
    let opts = Opts::parse(&rest, &["board", "timeout"])?;
    let timeout = opts.timeout()?;
    let wanted = opts.all("board");
    for b in &wanted {
        if !MEASURED.contains(b) && !SELFTEST_ONLY.contains(b) {
            return Err(format!(
                "perf: --board {b}: expected one of {}, {}",
                MEASURED.join(", "),
                SELFTEST_ONLY.join(", ")
            ));
        }
    }
    let pick = |names: &[&str]| -> Vec<&'static Board> {
        names
            .iter()
            .filter(|n| wanted.is_empty() || wanted.contains(n))
            .filter_map(|n| boards::find(n))
            .collect()
    };
    let measured = if no_seed { Vec::new() } else { pick(&MEASURED) };
    let selftest_only = pick(&SELFTEST_ONLY);

    let total = Instant::now();
    let defmt_print = tools::ensure_defmt_print(ctx)?;
    let plugin = tools::insn_plugin(ctx).ok_or(
        "perf needs the QEMU instruction-count plugin (a C compiler to build tools/qemu-insn/insn_mark.c)",
    )?;
    let perf_data = if measured.is_empty() {
        None
    } else {
        Some(ensure_data(ctx)?)
    };

    let mut ok = true;
    // (board, variant) -> run of the seed block, in run order.
    let mut runs: Vec<((String, &'static str), PerfRun)> = Vec::new();
    // The self-test runs with the bundled models.
    let mut st_runs: Vec<(String, PerfRun)> = Vec::new();
    for b in &measured {
        let all = variants(b.name);
        let vs = if no_portable { &all[..1] } else { all };
        for &(v, _) in vs {
            let run = build_and_run(
                ctx,
                b,
                v,
                perf_data.as_deref(),
                timeout,
                &defmt_print,
                &plugin,
            )?;
            ok &= run.passed;
            runs.push(((b.name.to_string(), v), run));
        }
    }
    for b in &selftest_only {
        let run = build_and_run(ctx, b, "perf", None, timeout, &defmt_print, &plugin)?;
        ok &= run.passed;
        st_runs.push((b.name.to_string(), run));
    }

    // Machine-readable lines.
    println!();
    let get = |board: &str, variant: &str| {
        runs.iter()
            .find(|((b, v), _)| b == board && *v == variant)
            .map(|(_, r)| r)
    };
    for (_, run) in &runs {
        println!("{}", run.selftest_line);
    }
    for (_, run) in &st_runs {
        println!("{}", run.selftest_line);
        for (_, _, r) in &run.models {
            println!("{}", r.render());
        }
    }
    for b in &measured {
        if let Some(run) = get(b.name, "perf") {
            for (arch, segs, r) in run.models.iter().filter(|(a, _, _)| a == "ldp") {
                for line in perf_lines(b.name, arch, segs) {
                    println!("{line}");
                }
                println!("{}", r.render());
            }
        }
    }

    // For people.
    for b in &measured {
        let seed = |v: &str| {
            get(b.name, v)
                .and_then(|r| r.models.iter().find(|(a, _, _)| a == "ldp"))
                .map(|(_, s, _)| s.as_slice())
        };
        let vs = variants(b.name);
        if let Some(segs) = seed(vs[0].0) {
            let base: Vec<(&str, &[Seg])> = vs[1..]
                .iter()
                .filter_map(|&(v, label)| seed(v).map(|s| (label, s)))
                .collect();
            summary(b, vs[0].1, segs, &base);
        }
    }
    eprintln!("perf: {:.1} s", total.elapsed().as_secs_f64());
    println!(
        "perf: {}",
        if ok {
            "self-tests passed, int8 outputs bit-identical to the host"
        } else {
            "FAILED (see above)"
        }
    );
    Ok(ok)
}

/// The kernel self-tests for `cargo xtask test`: `cargo xtask perf --board qemu-m55 --board
/// qemu-a53 --board qemu-a76 --no-seed` (the perf firmware's kernel self-test — Helium, NEON,
/// SDOT — and the bundled int8 models, bit-identical to the host).
pub fn selftest_a53(ctx: &Ctx) -> Result<bool, String> {
    cmd_perf(
        ctx,
        &[
            "--board".to_string(),
            "qemu-m55".to_string(),
            "--board".to_string(),
            "qemu-a53".to_string(),
            "--board".to_string(),
            "qemu-a76".to_string(),
            "--no-seed".to_string(),
        ],
    )
}

/// The `PERF` lines of one model: one per layer (the `return` segment is folded into the
/// total), then `layer=total` whose kind is that of the layers with the most instructions.
pub fn perf_lines(board: &str, arch: &str, segs: &[Seg]) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut macs, mut insns) = (0u64, 0u64);
    for s in segs {
        macs += s.macs;
        insns += s.instructions;
        if s.kind == "return" {
            continue;
        }
        *by_kind.entry(s.kind.as_str()).or_default() += s.instructions;
        out.push(format!(
            "PERF board={board} arch={arch} dtype=int8 layer={} kind={} macs={} instructions={}",
            s.layer, s.kind, s.macs, s.instructions
        ));
    }
    let dominant = by_kind
        .iter()
        .max_by_key(|(_, v)| **v)
        .map(|(k, _)| *k)
        .unwrap_or("pointwise");
    out.push(format!(
        "PERF board={board} arch={arch} dtype=int8 layer=total kind={dominant} macs={macs} instructions={insns}"
    ));
    out
}

fn per_mac(insns: u64, macs: u64) -> String {
    if macs == 0 {
        "-".into()
    } else {
        format!("{:.3}", insns as f64 / macs as f64)
    }
}

/// The table for people: per layer, instructions per MAC of the board's fastest build (`label`)
/// and of each baseline build, CMSIS-NN's figure where known, and the goals.
fn summary(b: &Board, label: &str, segs: &[Seg], base: &[(&str, &[Seg])]) {
    println!();
    println!(
        "{}: seed LDP({C},{C}) {GRID}x{GRID} int8, instructions per MAC (exact QEMU counts; MACs count padded depthwise taps)",
        b.core
    );
    let mut head = format!(
        "  {:<12} {:<10} {:>12} {:>14} {:>9}",
        "layer", "kind", "MACs", "instructions", label
    );
    for (l, _) in base {
        head += &format!(" {l:>9} {:>8}", "speedup");
    }
    head += &format!(" {:>9} {:>9}", "CMSIS-NN", "vs CMSIS");
    println!("{head}");
    let find = |s: &[Seg], layer: &str| s.iter().find(|x| x.layer == layer).cloned();
    let ratio = |a: u64, m: u64| a as f64 / m.max(1) as f64;
    let (pw_goal, dw_goal, whole_goal) = goals(b.name);
    let (mut macs, mut insns) = (0u64, 0u64);
    let mut btot = vec![0u64; base.len()];
    let mut goal_lines: Vec<(String, bool)> = Vec::new();
    for s in segs {
        macs += s.macs;
        insns += s.instructions;
        for (t, (_, bs)) in btot.iter_mut().zip(base) {
            *t += find(bs, &s.layer).map_or(0, |p| p.instructions);
        }
        if s.kind == "return" {
            continue;
        }
        let mut line = format!(
            "  {:<12} {:<10} {:>12} {:>14} {:>9}",
            s.layer,
            s.kind,
            thousands(s.macs),
            thousands(s.instructions),
            per_mac(s.instructions, s.macs)
        );
        for (_, bs) in base {
            match find(bs, &s.layer) {
                Some(p) => {
                    line += &format!(
                        " {:>9} {:>8}",
                        per_mac(p.instructions, p.macs),
                        format!("{:.2}x", ratio(p.instructions, s.instructions))
                    )
                }
                None => line += &format!(" {:>9} {:>8}", "-", "-"),
            }
        }
        let me = ratio(s.instructions, s.macs);
        match cmsis(&s.layer, b.name) {
            Some(c) if s.macs > 0 => {
                goal_lines.push((
                    format!("{} below CMSIS-NN ({me:.3} < {c})", s.layer),
                    me < c,
                ));
                line += &format!(" {:>9} {:>9}", format!("{c:.3}"), format!("{:.2}x", c / me));
            }
            _ => line += &format!(" {:>9} {:>9}", "-", "-"),
        }
        if s.macs > 0 {
            let g = match s.kind.as_str() {
                "pointwise" => pw_goal,
                "depthwise" => dw_goal,
                _ => f64::NAN,
            };
            if !g.is_nan() {
                goal_lines.push((format!("{} <= {g} ({me:.3})", s.layer), me <= g));
            }
        }
        println!("{line}");
    }
    let mut line = format!(
        "  {:<12} {:<10} {:>12} {:>14} {:>9}",
        "total",
        "(all)",
        thousands(macs),
        thousands(insns),
        per_mac(insns, macs)
    );
    for t in &btot {
        line += &format!(
            " {:>9} {:>8}",
            per_mac(*t, macs),
            format!("{:.2}x", ratio(*t, insns))
        );
    }
    println!("{line}");
    let whole = ratio(insns, macs);
    if !whole_goal.is_nan() {
        goal_lines.push((
            format!("whole block <= {whole_goal} ({whole:.3}, LayerNorm, GELU and skips included)"),
            whole <= whole_goal,
        ));
    }
    println!("  non-conv layers (resize, add, norm) have macs=0: their instructions count in the total only.");
    println!("  total = every instruction of the int8 forward pass (input quantized before, output dequantized after).");
    for (g, met) in goal_lines {
        println!("  goal {}: {g}", if met { "met   " } else { "MISSED" });
    }
}

/// Builds the perf firmware for `board` (`variant` = `perf` or `perf-portable`), runs it in QEMU
/// and reads its lines and markers.
fn build_and_run(
    ctx: &Ctx,
    board: &Board,
    variant: &str,
    data_dir: Option<&Path>,
    timeout: Duration,
    defmt_print: &Path,
    plugin: &Path,
) -> Result<PerfRun, String> {
    println!(
        "== {} ({}), firmware --features {},{variant}",
        board.name, board.core, board.name
    );
    let dir = ctx.work_dir().join("perf").join(format!(
        "{}-{variant}{}",
        board.name,
        if data_dir.is_some() { "-seed" } else { "" }
    ));
    let elf = dir.join("firmware.elf");
    let build = crate::firmware_build(
        ctx,
        board,
        &format!("{},{variant}", board.name),
        &[
            ("LDP_FW_DATA", data_dir.map(Path::as_os_str)),
            ("LDP_FW_SELFTEST", None),
        ],
        &elf,
    )?;

    let run = qemu::run(board, &elf, &dir, timeout, defmt_print, Some(plugin))?;
    let marks = read_marks(&dir.join("marks.log"));
    let parsed = parse_run(&run, &marks);
    let passed = match &parsed {
        Ok(p) => {
            run.status == Some(0)
                && !p.models.is_empty()
                && p.models.iter().all(|(_, _, r)| r.ok())
                && p.selftest_failures == Some(0)
        }
        Err(_) => false,
    };
    // The streaming check of every embedded model (firmware/src/stream_check.rs); a failed one
    // makes the firmware exit non-zero.
    for l in &run.log {
        if let Some(at) = l.find("STREAM board=") {
            println!("{}", &l[at..]);
        }
    }
    println!(
        "{}: {} (build {:.1} s, QEMU {:.1} s)",
        board.name,
        if passed { "passed" } else { "FAILED" },
        build.as_secs_f64(),
        run.wall.as_secs_f64()
    );
    if !passed {
        eprintln!("--- {} {variant} log ---", board.name);
        for l in &run.log {
            eprintln!("  {l}");
        }
        if !run.stderr.trim().is_empty() {
            eprintln!("--- stderr ---\n{}", run.stderr.trim_end());
        }
        if run.timed_out {
            eprintln!("  QEMU did not finish within the timeout and was stopped");
        }
        eprintln!("  QEMU exit status: {:?}", run.status);
        if let Err(e) = &parsed {
            eprintln!("  {e}");
        }
    }
    let mut p = parsed.unwrap_or(PerfRun {
        selftest_failures: None,
        selftest_line: String::new(),
        models: Vec::new(),
        passed: false,
    });
    p.passed = passed;
    Ok(p)
}

/// The `delta=` of every marker in the plugin's log, in order.
fn read_marks(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("insn-mark "))
        .filter_map(|l| {
            parse_kv(l)
                .into_iter()
                .find(|(k, _)| k == "delta")
                .and_then(|(_, v)| v.parse().ok())
        })
        .collect()
}

/// Pairs the firmware's `PERFMODEL`/`PERFSEG`/`RESULT` lines with the marker deltas.
pub fn parse_run(run: &qemu::Run, marks: &[u64]) -> Result<PerfRun, String> {
    let mut selftest_failures = None;
    let mut selftest_line = String::new();
    let mut models = Vec::new();
    let mut next_mark = 0usize;
    // The marks of the current model: deltas[1..] are its segments.
    let mut current: Option<(String, Vec<u64>, Vec<Seg>)> = None;
    for l in &run.log {
        if let Some(at) = l.find("SELFTEST board=") {
            selftest_line = l[at..].to_string();
            selftest_failures = parse_kv(&l[at..])
                .into_iter()
                .find(|(k, _)| k == "failures")
                .and_then(|(_, v)| v.parse().ok());
        } else if let Some(at) = l.find("PERFMODEL board=") {
            let kv: BTreeMap<String, String> = parse_kv(&l[at..]).into_iter().collect();
            let k: usize = kv.get("marks").and_then(|v| v.parse().ok()).unwrap_or(0);
            if k < 2 || next_mark + k > marks.len() {
                return Err(format!(
                    "the firmware reports {k} markers for a model but the plugin logged {} in all ({next_mark} used)",
                    marks.len()
                ));
            }
            let deltas = marks[next_mark..next_mark + k].to_vec();
            next_mark += k;
            current = Some((
                kv.get("arch").cloned().unwrap_or_default(),
                deltas,
                Vec::new(),
            ));
        } else if let Some(at) = l.find("PERFSEG board=") {
            let kv: BTreeMap<String, String> = parse_kv(&l[at..]).into_iter().collect();
            let Some((_, deltas, segs)) = current.as_mut() else {
                return Err("PERFSEG before PERFMODEL".into());
            };
            let i: usize = kv
                .get("index")
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX);
            let d = deltas
                .get(i + 1)
                .copied()
                .ok_or_else(|| format!("PERFSEG index {i}: no such marker"))?;
            segs.push(Seg {
                layer: kv.get("layer").cloned().unwrap_or_default(),
                kind: kv.get("kind").cloned().unwrap_or_default(),
                macs: kv.get("macs").and_then(|v| v.parse().ok()).unwrap_or(0),
                instructions: d,
            });
        } else if let Some(mut r) = ResultLine::parse(l) {
            let (arch, _, segs) = current
                .take()
                .ok_or("a RESULT line without PERFMODEL before it")?;
            let total: u64 = segs.iter().map(|s| s.instructions).sum();
            r.set("instructions", total.to_string());
            models.push((arch, segs, r));
        }
    }
    if next_mark != marks.len() {
        return Err(format!(
            "{} markers logged, {next_mark} accounted for by PERFMODEL lines",
            marks.len()
        ));
    }
    Ok(PerfRun {
        selftest_failures,
        selftest_line,
        models,
        passed: false,
    })
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-1, 1)`.
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f64 / (1u64 << 23) as f64 - 1.0) as f32
    }
    /// Roughly standard normal (sum of four uniforms, variance 1).
    fn normal(&mut self) -> f32 {
        (self.uniform() + self.uniform() + self.uniform() + self.uniform()) * 0.866_025_4
    }
}

/// The synthetic `LDP(C, C)` weights as safetensors (PyTorch names and shapes): convolution
/// weights uniform in ±1/√fan_in, biases ±0.1, LayerNorm weights 1 ± 0.1.
fn synthetic_safetensors() -> Vec<u8> {
    let mut rng = Rng(0x1d9);
    let pw = [C, C, 1, 1];
    let dw = [C, 1, 3, 3];
    let v = [C];
    let tensors: [(&str, &[usize]); 14] = [
        ("pointwise1.weight", &pw),
        ("pointwise1.bias", &v),
        ("depthwise1.weight", &dw),
        ("depthwise1.bias", &v),
        ("pointwise2.weight", &pw),
        ("pointwise2.bias", &v),
        ("norm1.weight", &v),
        ("norm1.bias", &v),
        ("depthwise2.weight", &dw),
        ("depthwise2.bias", &v),
        ("pointwise3.weight", &pw),
        ("pointwise3.bias", &v),
        ("norm2.weight", &v),
        ("norm2.bias", &v),
    ];
    let mut header = String::from("{");
    let mut body: Vec<u8> = Vec::new();
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let n: usize = shape.iter().product();
        let fan_in = (n / shape[0]).max(1) as f32;
        let start = body.len();
        for _ in 0..n {
            let u = rng.uniform();
            let val = if shape.len() > 1 {
                u / fan_in.sqrt()
            } else if name.starts_with("norm") && name.ends_with("weight") {
                1.0 + 0.1 * u
            } else {
                0.1 * u
            };
            body.extend_from_slice(&val.to_le_bytes());
        }
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{start},{}]}}",
            dims.join(","),
            body.len()
        ));
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// FNV-1a of a file (the `ldp-quant` executable: the data is remade when it changes).
fn file_hash(path: &Path) -> Result<u64, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// Makes `target/xtask/perf-data/` unless it is there for this [`DATA_VERSION`] and this build
/// of `ldp-quant` (the quantizer and the host's int8 forward pass decide the expected output).
fn ensure_data(ctx: &Ctx) -> Result<PathBuf, String> {
    let dir = ctx.work_dir().join("perf-data");
    let stamp = dir.join("VERSION");
    let lq = data::ldp_quant(ctx)?;
    let version = format!("{DATA_VERSION}\nldp-quant {:016x}\n", file_hash(&lq)?);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(version.as_str()) {
        return Ok(dir);
    }
    println!("== perf data: synthetic LDP({C},{C}) {GRID}x{GRID}, int8");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| format!("writing {}: {e}", p.display()))
    };
    write("weights.safetensors", &synthetic_safetensors())?;
    let shape = [1, C, GRID, GRID];
    let n = C * GRID * GRID;
    let mut rng = Rng(0x5eed);
    let calib: Vec<f32> = (0..2 * n).map(|_| rng.normal()).collect();
    npy::write_f32(&dir.join("calib.npy"), &[2, C, GRID, GRID], &calib)?;
    let input = data::synthetic_input(&shape);
    npy::write_f32(&dir.join("input.npy"), &shape, &input)?;

    let blob = dir.join("model.int8.ldp");
    let mut cmd = Command::new(&lq);
    cmd.arg("convert")
        .arg("--weights")
        .arg(dir.join("weights.safetensors"))
        .args(["--arch", "ldp", "--grid", &format!("{GRID}x{GRID}")])
        .args(["--dtype", "int8", "--input-quant", "per-tensor", "--calib"])
        .arg(dir.join("calib.npy"))
        .arg("-o")
        .arg(&blob);
    tools::run(&mut cmd)?;
    data::run_model(
        &lq,
        &blob,
        &dir.join("input.npy"),
        &dir.join("expected.npy"),
    )?;
    let (_, input_raw) = data::npy_to_raw(&dir.join("input.npy"))?;
    let (_, expected_raw) = data::npy_to_raw(&dir.join("expected.npy"))?;
    write("input.f32", &input_raw)?;
    write("expected.f32", &expected_raw)?;
    write(
        "manifest.txt",
        format!(
            "# Generated by `cargo xtask perf` ({DATA_VERSION}).\n\
             # int8 expected output = `ldp-quant run` of the blob on the host: bit-identical.\n\
             ldp int8 model.int8.ldp input.f32 expected.f32 exact\n"
        )
        .as_bytes(),
    )?;
    write("VERSION", version.as_bytes())?;
    Ok(dir)
}
