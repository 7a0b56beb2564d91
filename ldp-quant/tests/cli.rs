//! End-to-end tests of the `ldp-quant` binary against the committed golden data
//! (`host-tests/golden/`, PyTorch float64 references), plus its error handling.
//!
//! Run with `cargo test -p ldp-quant --test cli -- --nocapture` to see the measured errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ldp_quant::metrics::compare;
use ldp_quant::npy;
use safetensors::{Dtype, SafeTensors};

const BIN: &str = env!("CARGO_BIN_EXE_ldp-quant");

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-tests/golden")
}

fn cases() -> Vec<String> {
    let text = std::fs::read_to_string(golden().join("index.json"))
        .expect("host-tests/golden/index.json (golden data) is missing");
    serde_json::from_str(&text).expect("index.json is a list of case names")
}

struct Meta {
    arch: String,
    h: usize,
    w: usize,
}

fn meta(case: &str) -> Meta {
    let text = std::fs::read_to_string(golden().join(case).join("meta.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    Meta {
        arch: v["arch"].as_str().unwrap().to_string(),
        h: v["h"].as_u64().unwrap() as usize,
        w: v["w"].as_u64().unwrap() as usize,
    }
}

fn grid(m: &Meta) -> String {
    format!("{}x{}", m.h, m.w)
}

fn cmd<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("spawn ldp-quant")
}

fn ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let o = cmd(args);
    assert!(
        o.status.success(),
        "ldp-quant {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command must fail with exactly one stderr line `error: …` (containing `needle`), no panic.
fn fails<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S], needle: &str) -> String {
    let o = cmd(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "ldp-quant {args:?} succeeded; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line: {err:?}");
    assert!(lines[0].starts_with("error: "), "stderr: {err:?}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "stderr {err:?} does not mention {needle:?}"
    );
    println!("  {args:?}\n    -> {}", lines[0]);
    err
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Relative L2 of an f32 output against an f64 reference, shapes checked.
fn rel_l2(out: &Path, expected: &Path) -> f64 {
    let y = npy::read_f32(out).unwrap();
    let r = npy::read_f64(expected).unwrap();
    assert_eq!(
        y.shape,
        r.shape,
        "{} vs {}",
        out.display(),
        expected.display()
    );
    let m = compare(&y.data, &r.data);
    assert!(m.rel_l2.is_finite());
    m.rel_l2
}

fn convert(weights: &Path, grid: &str, dtype: &str, out: &Path) {
    ok(&[
        "convert",
        "--weights",
        &p(weights),
        "--grid",
        grid,
        "--dtype",
        dtype,
        "-o",
        &p(out),
    ]);
}

fn run(model: &Path, input: &Path, out: &Path) {
    ok(&[
        "run",
        "--model",
        &p(model),
        "--input",
        &p(input),
        "-o",
        &p(out),
    ]);
}

/// convert + run every golden case (single input and the held-out batch) in `dtype`.
fn golden_dtype(dtype: &str, bound: f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut worst = 0.0f64;
    println!("dtype {dtype}: rel L2 vs PyTorch float64 (bound {bound:e})");
    for case in cases() {
        let m = meta(&case);
        let g = golden().join(&case);
        let blob = dir.path().join(format!("{case}.ldp"));
        convert(&g.join("weights.safetensors"), &grid(&m), dtype, &blob);
        let y = dir.path().join(format!("{case}.npy"));
        run(&blob, &g.join("input.npy"), &y);
        let e1 = rel_l2(&y, &g.join("expected.npy"));
        let yb = dir.path().join(format!("{case}_heldout.npy"));
        run(&blob, &g.join("heldout.npy"), &yb);
        let e2 = rel_l2(&yb, &g.join("heldout_expected.npy"));
        println!(
            "  {case:<22} {:<13} input {e1:.3e}  heldout batch {e2:.3e}",
            m.arch
        );
        assert!(e1 <= bound, "{case} {dtype}: rel L2 {e1:e} > {bound:e}");
        assert!(
            e2 <= bound,
            "{case} {dtype} heldout: rel L2 {e2:e} > {bound:e}"
        );
        worst = worst.max(e1).max(e2);
    }
    println!("  worst {worst:.3e}");
}

#[test]
fn golden_f32_every_case() {
    golden_dtype("f32", 1e-5);
}

#[test]
fn golden_f16_every_case() {
    golden_dtype("f16", 5e-3);
}

#[test]
fn checkpoint_files() {
    let dir = tempfile::tempdir().unwrap();
    let ck = golden().join("checkpoints");
    // (file, grid, input, expected, prefix that must be detected)
    let rows = [
        (
            "v1_whole.safetensors",
            "6x6",
            golden().join("v1_32to64_h6/input.npy"),
            golden().join("v1_32to64_h6/expected.npy"),
            "model.mm_projector.model.",
        ),
        (
            "v2_whole_bf16.safetensors",
            "6x6",
            golden().join("v2_32to64_h6/input.npy"),
            ck.join("v2_whole_bf16_expected.npy"),
            "model.mm_projector.",
        ),
        (
            "ldp_f16.safetensors",
            "8x8",
            golden().join("ldp_c16_8x8/input.npy"),
            ck.join("ldp_f16_expected.npy"),
            "no prefix",
        ),
        (
            "ldp_linear_shapes.safetensors",
            "8x8",
            golden().join("ldp_c16_8x8/input.npy"),
            golden().join("ldp_c16_8x8/expected.npy"),
            "no prefix",
        ),
    ];
    for (file, grid, input, expected, prefix) in rows {
        for (dtype, bound) in [("f32", 1e-5), ("f16", 5e-3)] {
            let blob = dir.path().join(format!("{file}.{dtype}.ldp"));
            let stdout = ok(&[
                "convert",
                "--weights",
                &p(&ck.join(file)),
                "--grid",
                grid,
                "--dtype",
                dtype,
                "-o",
                &p(&blob),
            ]);
            assert!(stdout.contains(prefix), "{file}: {stdout}");
            let y = dir.path().join(format!("{file}.{dtype}.npy"));
            run(&blob, &input, &y);
            let e = rel_l2(&y, &expected);
            println!("  {file:<30} {dtype}: rel L2 {e:.3e}");
            assert!(e <= bound, "{file} {dtype}: rel L2 {e:e} > {bound:e}");
        }
    }
}

#[test]
fn unbatched_inputs_give_batch_of_one() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["ldp_c8to24_7x9", "v1_24to48_h7", "v2_8to16_h13"] {
        let m = meta(case);
        let g = golden().join(case);
        let blob = dir.path().join("m.ldp");
        convert(&g.join("weights.safetensors"), &grid(&m), "f32", &blob);
        // Drop the leading batch axis of the [1, …] input.
        let x = npy::read_f32(&g.join("input.npy")).unwrap();
        assert_eq!(x.shape[0], 1);
        let x1 = dir.path().join("x1.npy");
        npy::write_f32(&x1, &x.shape[1..], &x.data).unwrap();
        let y = dir.path().join("y.npy");
        run(&blob, &x1, &y);
        let e = rel_l2(&y, &g.join("expected.npy"));
        assert!(e <= 1e-5, "{case}: {e:e}");
    }
}

#[test]
fn inspect_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let g = golden().join("v1_32to64_h6");
    let blob = dir.path().join("v1.ldp");
    convert(&g.join("weights.safetensors"), "6x6", "f16", &blob);
    let s = ok(&["inspect", "--model", &p(&blob)]);
    println!("{s}");
    for needle in [
        "mobilevlm-v1",
        "f16",
        "[1, 36, 32]",
        "[1, 9, 64]",
        "scratch RAM",
        "squeeze width 16",
        "mb_block.2.block.2.1.bias",
        "parameters:   20384",
    ] {
        assert!(s.contains(needle), "inspect lacks {needle:?}");
    }
    let s = ok(&[
        "eval",
        "--model",
        &p(&blob),
        "--weights",
        &p(&g.join("weights.safetensors")),
        "--input",
        &p(&g.join("heldout.npy")),
    ]);
    println!("{s}");
    assert_eq!(s.matches("sample ").count(), 4, "{s}");
    let overall = s
        .lines()
        .find(|l| l.starts_with("overall (4 samples)"))
        .expect("overall line");
    let rel: f64 = overall
        .split("rel_l2 = ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .and_then(|t| t.parse().ok())
        .expect("rel_l2 number");
    assert!(rel > 0.0 && rel < 5e-3, "f16 eval rel L2 {rel}");
    // int8 with int8 activations: the quantization parameters, with the 16-bit LayerNorm
    // inputs labelled.
    let blob8 = dir.path().join("v1_8.ldp");
    let convert8 = |extra: &[&str], out: &Path| {
        let mut a = vec![
            "convert".to_string(),
            "--weights".into(),
            p(&g.join("weights.safetensors")),
            "--grid".into(),
            "6x6".into(),
            "--dtype".into(),
            "int8".into(),
            "--calib".into(),
            p(&g.join("calib.npy")),
            "-o".into(),
            p(out),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = cmd(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let e = convert8(&["--activations", "int8"], &blob8);
    assert!(
        e.contains("note: MobileVLM V1 with int8 activations"),
        "{e}"
    );
    let s = ok(&["inspect", "--model", &p(&blob8)]);
    assert_eq!(s.matches("(16-bit LayerNorm input)").count(), 4, "{s}");
    assert!(s.contains("mb_block.1.block.2.0.Z_OUT"), "{s}");
    // The default: 16-bit activations, saturations where int8 has zero points.
    let blob16 = dir.path().join("v1_16.ldp");
    let e = convert8(&[], &blob16);
    assert!(
        e.contains("16-bit activations with int8 weights (chosen: MobileVLM V1's default)"),
        "{e}"
    );
    let s = ok(&["inspect", "--model", &p(&blob16)]);
    assert!(s.contains("16-bit symmetric activations"), "{s}");
    assert!(s.contains("mb_block.1.hswish.hswish16"), "{s}");
    assert!(!s.contains("gate.lut"), "{s}");
    let sat_lines = |tail: &str| {
        s.lines()
            .filter(|l| l.contains(tail) && l.contains(" sat "))
            .count()
    };
    assert_eq!(sat_lines(".Z_HID "), 2, "{s}");
    assert_eq!(sat_lines(".Z_OUT "), 12, "{s}");
    // eval's per-layer report reads the 16-bit activations (and the int8 ones of the int8a8
    // blob): every traced layer against its f32 twin, the last one being the output itself.
    let eval_of = |blob: &Path| {
        ok(&[
            "eval",
            "--model",
            &p(blob),
            "--weights",
            &p(&g.join("weights.safetensors")),
            "--input",
            &p(&g.join("heldout.npy")),
        ])
    };
    let number = |t: &str| -> f64 { t.trim().parse().expect("a number") };
    // (The int8a8 blob's conv outputs that feed a LayerNorm, `b1.d`, `b1.pw`, …, are 16-bit
    // intermediates computed row by row with their LayerNorm: not traced.)
    for (blob, header, bound, wanted) in [
        (
            &blob16,
            "per layer (16-bit activation vs f32 reference)",
            0.02,
            &["h1", "z", "b1.d", "b1.hs", "b1.se", "b1.pw", "b2.u"][..],
        ),
        (
            &blob8,
            "per layer (int8 activation vs f32 reference)",
            0.06,
            &["h1", "z", "b1.hs", "b1.se", "b2.u"][..],
        ),
    ] {
        let s = eval_of(blob);
        println!("{s}");
        let overall = s
            .lines()
            .find(|l| l.starts_with("overall (4 samples)"))
            .and_then(|l| l.split("rel_l2 = ").nth(1))
            .and_then(|t| t.split(',').next())
            .map(number)
            .expect("overall rel_l2");
        let rows: Vec<(String, f64)> = s
            .lines()
            .skip_while(|l| !l.starts_with(header))
            .skip(2)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.len() == 4)
            .map(|w| (w[0].to_string(), number(w[1])))
            .collect();
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        for want in wanted {
            assert!(
                names.contains(want),
                "{header}: no {want} in {names:?}\n{s}"
            );
        }
        for (n, e) in &rows {
            assert!(*e > 0.0 && *e <= bound, "{header}: {n} rel_l2 {e}");
        }
        let (last, e) = rows.last().expect("rows");
        assert_eq!(last, "b2.u", "{s}");
        assert!(
            (e - overall).abs() <= 2e-3 * overall,
            "{header}: {e} vs {overall}"
        );
    }
    // An f32 blob against its own weights is exact up to rounding.
    let blob32 = dir.path().join("v1_32.ldp");
    convert(&g.join("weights.safetensors"), "6x6", "f32", &blob32);
    let s = ok(&[
        "eval",
        "--model",
        &p(&blob32),
        "--weights",
        &p(&g.join("weights.safetensors")),
        "--input",
        &p(&g.join("input.npy")),
    ]);
    assert!(s.contains("overall (1 sample): rel_l2 = 0.000e0"), "{s}");
}

/// Tensors of a safetensors file as owned (name, dtype, shape, bytes).
type Owned = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;

fn load_st(path: &Path) -> Owned {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Owned = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn save_st(path: &Path, tensors: &Owned) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| p(&dir.path().join(n));
    let g = golden().join("ldp_c16_8x8");
    let gv1 = golden().join("v1_32to64_h6");
    let w = p(&g.join("weights.safetensors"));
    let input = p(&g.join("input.npy"));
    let blob = dir.path().join("ok.ldp");
    convert(&g.join("weights.safetensors"), "8x8", "f32", &blob);
    let blob_s = p(&blob);
    let convd = |weights: &str, grid: &str, dtype: &str| -> Vec<String> {
        vec![
            "convert".into(),
            "--weights".into(),
            weights.into(),
            "--grid".into(),
            grid.into(),
            "--dtype".into(),
            dtype.into(),
            "-o".into(),
            d("out.ldp"),
        ]
    };
    let conv = |weights: &str, grid: &str| convd(weights, grid, "f32");
    let runv = |model: &str, input: &str| -> Vec<String> {
        vec![
            "run".into(),
            "--model".into(),
            model.into(),
            "--input".into(),
            input.into(),
            "-o".into(),
            d("y.npy"),
        ]
    };

    // Missing files.
    fails(&conv(&d("nope.safetensors"), "8x8"), "nope.safetensors");
    fails(&runv(&d("nope.ldp"), &input), "nope.ldp");
    fails(&runv(&blob_s, &d("nope.npy")), "nope.npy");
    fails(&["inspect", "--model", &d("nope.ldp")], "cannot read");

    // Bad .npy inputs.
    let good = std::fs::read(g.join("input.npy")).unwrap();
    std::fs::write(d("trunc.npy"), &good[..good.len() - 7]).unwrap();
    fails(&runv(&blob_s, &d("trunc.npy")), "truncated");
    std::fs::write(d("header_only.npy"), &good[..40]).unwrap();
    fails(&runv(&blob_s, &d("header_only.npy")), "error");
    fails(&runv(&blob_s, &p(&g.join("expected.npy"))), "<f8");
    fails(
        &runv(&blob_s, &p(&golden().join("ldp_c8to24_7x9/input.npy"))),
        "expected [1, 16, 8, 8]",
    );
    fails(
        &runv(&blob_s, &p(&gv1.join("input.npy"))),
        "has shape [1, 36, 32]",
    );
    std::fs::write(d("garbage.npy"), b"hello world, not numpy").unwrap();
    fails(&runv(&blob_s, &d("garbage.npy")), "npy");

    // Corrupted blobs.
    let bytes = std::fs::read(&blob).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    std::fs::write(d("flipped.ldp"), &flipped).unwrap();
    fails(&runv(&d("flipped.ldp"), &input), "CRC");
    fails(&["inspect", "--model", &d("flipped.ldp")], "CRC");
    // A future format version (6) and the old ones (1-4): all rejected, naming the version.
    for v in [1u8, 2, 3, 4, 6] {
        let mut other = bytes.clone();
        other[4] = v;
        let n = other.len() - 4;
        let crc = ldp_core::blob::crc::crc32(&other[..n]);
        other[n..].copy_from_slice(&crc.to_le_bytes());
        let name = format!("version{v}.ldp");
        std::fs::write(d(&name), &other).unwrap();
        fails(&runv(&d(&name), &input), &format!("version {v}"));
    }
    std::fs::write(d("short.ldp"), &bytes[..bytes.len() - 100]).unwrap();
    fails(&runv(&d("short.ldp"), &input), "length mismatch");
    std::fs::write(d("empty.ldp"), b"").unwrap();
    fails(&runv(&d("empty.ldp"), &input), "truncated");
    fails(&runv(&input, &input), "magic");

    // Weights: renamed keys, NaN, ambiguous architecture, wrong dtype, wrong shape.
    let st = load_st(&g.join("weights.safetensors"));
    let renamed: Owned = st
        .iter()
        .map(|(n, d, s, b)| (n.replace("pointwise2", "pw2"), *d, s.clone(), b.clone()))
        .collect();
    save_st(&dir.path().join("renamed.safetensors"), &renamed);
    let e = fails(
        &conv(&d("renamed.safetensors"), "8x8"),
        "missing tensor `pointwise2.weight`",
    );
    assert!(e.contains("pw2.weight"), "found keys are listed: {e}");
    let mut nan = st.clone();
    let i = nan.iter().position(|t| t.0 == "depthwise1.weight").unwrap();
    nan[i].3[4 * 5..4 * 6].copy_from_slice(&f32::NAN.to_le_bytes());
    save_st(&dir.path().join("nan.safetensors"), &nan);
    let e = fails(&conv(&d("nan.safetensors"), "8x8"), "depthwise1.weight");
    assert!(e.contains("index 5") && e.contains("NaN"), "{e}");
    let mut both = st.clone();
    both.extend(load_st(&golden().join("v2_32to64_h6/weights.safetensors")));
    save_st(&dir.path().join("both.safetensors"), &both);
    let e = fails(
        &conv(&d("both.safetensors"), "8x8"),
        "ambiguous architecture",
    );
    assert!(e.contains("--arch"), "{e}");
    // …which --arch resolves.
    ok(&[
        conv(&d("both.safetensors"), "8x8"),
        vec!["--arch".into(), "ldp".into()],
    ]
    .concat());
    let mut i32s = st.clone();
    i32s[0].1 = Dtype::I32;
    save_st(&dir.path().join("i32.safetensors"), &i32s);
    fails(
        &conv(&d("i32.safetensors"), "8x8"),
        "only F32, F16 and BF16",
    );
    let mut shape = st.clone();
    let i = shape
        .iter()
        .position(|t| t.0 == "pointwise3.weight")
        .unwrap();
    shape[i].2 = vec![16, 16, 1];
    save_st(&dir.path().join("shape.safetensors"), &shape);
    fails(
        &conv(&d("shape.safetensors"), "8x8"),
        "expected [16, 16, 1, 1] or [16, 16]",
    );
    std::fs::write(
        d("junk.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{}junk!!",
    )
    .unwrap();
    fails(&conv(&d("junk.safetensors"), "8x8"), "safetensors");
    fails(&conv(&d("version6.ldp"), "8x8"), "safetensors");
    fails(
        &[
            conv(&w, "8x8"),
            vec!["--prefix".into(), "model.mm_projector.".into()],
        ]
        .concat(),
        "no projector tensors",
    );
    fails(
        &[
            conv(&w, "8x8"),
            vec!["--arch".into(), "mobilevlm-v2".into()],
        ]
        .concat(),
        "looks like `ldp`",
    );

    // Grids.
    let v1w = p(&gv1.join("weights.safetensors"));
    fails(&conv(&v1w, "6x7"), "square");
    fails(
        &[
            conv(&v1w, "6x7"),
            vec!["--arch".into(), "mobilevlm-v1".into()],
        ]
        .concat(),
        "square",
    );
    fails(&conv(&w, "8by8"), "HxW");
    fails(&conv(&w, "0x8"), "at least 1");

    // The int8 calibration file is validated against the model's input.
    let int8 = |calib: &Path| -> Vec<String> {
        [convd(&w, "8x8", "int8"), vec!["--calib".into(), p(calib)]].concat()
    };
    fails(
        &int8(&gv1.join("calib.npy")),
        "calibration data has shape [8, 36, 32]",
    );

    // eval with weights that do not match the blob.
    fails(
        &[
            "eval",
            "--model",
            &blob_s,
            "--weights",
            &p(&golden().join("ldp_c8to24_7x9/weights.safetensors")),
            "--input",
            &input,
        ],
        "do not match the blob",
    );

    // Usage errors are one line too.
    fails(
        &["convert", "--weights", &w, "--dtype", "f32", "-o", "x"],
        "--grid",
    );
    fails(&["frobnicate"], "unrecognized subcommand");
}

#[test]
fn help_has_examples() {
    for sub in [&["--help"][..], &["convert", "--help"], &["run", "--help"]] {
        let s = ok(sub);
        assert!(s.contains("Examples"), "{sub:?}: {s}");
    }
}

/// Runs `ldp-quant` and returns (success, stderr).
fn status_and_stderr<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (bool, String) {
    let o = cmd(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "panic: {err}");
    (o.status.success(), err)
}

/// The reproductions of issue 22's "nothing silently wrong" and "unbounded reads": each gets a
/// clear error (or, for a weak calibration set, a warning), never a destroyed input, a
/// half-written output or an unbounded read.
#[test]
fn bad_inputs_are_refused_not_silently_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let g = golden().join("ldp_c16_8x8");
    // Private copies: a test that overwrote an input must not damage the golden data.
    let w = d("weights.safetensors");
    std::fs::copy(g.join("weights.safetensors"), &w).unwrap();
    let input = d("input.npy");
    std::fs::copy(g.join("input.npy"), &input).unwrap();
    let calib = d("calib.npy");
    std::fs::copy(g.join("calib.npy"), &calib).unwrap();
    let blob = d("m.ldp");
    convert(&w, "8x8", "f32", &blob);
    let w_bytes = std::fs::read(&w).unwrap();
    let blob_bytes = std::fs::read(&blob).unwrap();
    let input_bytes = std::fs::read(&input).unwrap();
    let conv = |out: &Path, extra: &[String]| -> Vec<String> {
        let mut v: Vec<String> = ["convert", "--weights", &p(&w), "--grid", "8x8", "--dtype"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().cloned());
        v.extend(["-o".to_string(), p(out)]);
        v
    };
    let f32v = vec!["f32".to_string()];
    let int8 = |c: &Path| vec!["int8".to_string(), "--calib".to_string(), p(c)];
    let runv = |model: &Path, inp: &Path, out: &Path| -> Vec<String> {
        [
            "run",
            "--model",
            &p(model),
            "--input",
            &p(inp),
            "-o",
            &p(out),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // An output equal to an input: refused before anything is written.
    fails(&conv(&w, &f32v), "same file as --weights");
    let dotted = dir.path().join(".").join("weights.safetensors");
    fails(&conv(&dotted, &f32v), "same file as --weights");
    std::fs::hard_link(&w, d("w_link.safetensors")).unwrap();
    fails(
        &conv(&d("w_link.safetensors"), &f32v),
        "same file as --weights",
    );
    fails(&conv(&calib, &int8(&calib)), "same file as --calib");
    fails(&runv(&blob, &input, &blob), "same file as --model");
    fails(&runv(&blob, &input, &input), "same file as --input");
    assert_eq!(std::fs::read(&w).unwrap(), w_bytes, "weights overwritten");
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        blob_bytes,
        "model overwritten"
    );
    assert_eq!(
        std::fs::read(&input).unwrap(),
        input_bytes,
        "input overwritten"
    );

    // Unbounded reads: devices, directories and lying sizes are refused before reading.
    let zero = Path::new("/dev/zero");
    fails(&runv(zero, &input, &d("y.npy")), "not a regular file");
    fails(&runv(&blob, zero, &d("y.npy")), "not a regular file");
    fails(&runv(&blob, dir.path(), &d("y.npy")), "not a regular file");
    fails(&conv(&d("c.ldp"), &int8(zero)), "not a regular file");
    fails(&["inspect", "--model", "/dev/zero"], "not a regular file");
    fails(
        &[
            "convert",
            "--weights",
            "/dev/zero",
            "--grid",
            "8x8",
            "--dtype",
            "f32",
            "-o",
            d("w.ldp").to_str().unwrap(),
        ],
        "not a regular file",
    );
    let mut padded = blob_bytes.clone();
    padded.extend_from_slice(&[0u8; 16]);
    std::fs::write(d("padded.ldp"), &padded).unwrap();
    fails(
        &runv(&d("padded.ldp"), &input, &d("y.npy")),
        "length mismatch",
    );
    // A .npy whose header declares far more data than the file holds: refused from the
    // header, before reading the data.
    let mut huge = input_bytes.clone();
    let hdr = String::from_utf8_lossy(&huge[10..80]).into_owned();
    let at = 10 + hdr.find("(1, 16, 8, 8)").expect("shape in the header");
    huge[at..at + 13].copy_from_slice(b"(9, 16, 8, 8)");
    std::fs::write(d("huge.npy"), &huge).unwrap();
    fails(
        &runv(&blob, &d("huge.npy"), &d("y.npy")),
        "truncated .npy file",
    );
    assert!(!d("y.npy").exists(), "a failed run left an output");

    // Non-finite inputs: a clear error naming the first bad index; no output file.
    let x = npy::read_f32(&input).unwrap();
    // (Index 197 is channel 3, pixel 5: the f32 model finds it in its channels-last copy, at
    // 5·16 + 3, and the CLI maps that back to the file's order.)
    for (bad, name, at) in [
        (f32::NAN, "NaN", 37),
        (f32::INFINITY, "inf", 37),
        (f32::NAN, "NaN", 197),
    ] {
        let mut data = x.data.clone();
        data[at] = bad;
        npy::write_f32(&d("bad.npy"), &x.shape, &data).unwrap();
        let e = fails(&runv(&blob, &d("bad.npy"), &d("y.npy")), "non-finite value");
        assert!(
            e.contains(&format!("flat index {at} ")) && e.contains(name),
            "{e}"
        );
        assert!(!d("y.npy").exists(), "a failed run left an output");
    }
    // The same for an int8 model, whose quantizer used to turn NaN into 0.
    let blob8 = d("m8.ldp");
    ok(&conv(&blob8, &int8(&calib)));
    // Its channels-first quantizer (`quant::quantize_input_nchw`) finds the value in the
    // file's order: first, inside (channel 3, pixel 5) and last, and a later second one.
    let last = x.data.len() - 1;
    for (bad, name, at) in [
        (f32::NAN, "NaN", 0),
        (f32::NEG_INFINITY, "-inf", 197),
        (f32::INFINITY, "inf", last),
    ] {
        let mut data = x.data.clone();
        data[at] = bad;
        if at < last {
            data[last] = f32::NAN;
        }
        npy::write_f32(&d("bad.npy"), &x.shape, &data).unwrap();
        let e = fails(
            &runv(&blob8, &d("bad.npy"), &d("y.npy")),
            "non-finite value",
        );
        assert!(
            e.contains(&format!("flat index {at} ")) && e.contains(name),
            "{e}"
        );
        assert!(!d("y.npy").exists(), "a failed run left an output");
    }
    // A batch of two `ldp` samples, the bad value in the second (channel 3, pixel 5), f32 and
    // int8, on one thread and on two (where a reader thread reads, converts and quantizes the
    // next sample in channel groups): the index in the file's order; and a good batch gives
    // the single sample's output twice, bit for bit, whatever the thread count.
    let n1 = x.data.len();
    let mut shape2 = x.shape.clone();
    shape2.insert(0, 2);
    if shape2.len() == 5 {
        shape2.remove(1);
    }
    let good2 = [x.data.clone(), x.data.clone()].concat();
    npy::write_f32(&d("good2.npy"), &shape2, &good2).unwrap();
    let mut bad2 = good2.clone();
    bad2[n1 + 197] = f32::NAN;
    npy::write_f32(&d("bad2.npy"), &shape2, &bad2).unwrap();
    for b in [&blob, &blob8] {
        run(b, &input, &d("y1.npy"));
        let y1 = npy::read_f32(&d("y1.npy")).unwrap();
        for threads in ["1", "2"] {
            let mut v = runv(b, &d("bad2.npy"), &d("y.npy"));
            v.extend(["--threads".to_string(), threads.to_string()]);
            let e = fails(&v, "non-finite value");
            assert!(e.contains(&format!("flat index {} ", n1 + 197)), "{e}");
            assert!(!d("y.npy").exists(), "a failed run left an output");
            let mut v = runv(b, &d("good2.npy"), &d("y2.npy"));
            v.extend(["--threads".to_string(), threads.to_string()]);
            ok(&v);
            let y2 = npy::read_f32(&d("y2.npy")).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(y2.data.len(), 2 * y1.data.len());
            assert_eq!(bits(&y2.data[..y1.data.len()]), bits(&y1.data), "{threads}");
            assert_eq!(bits(&y2.data[y1.data.len()..]), bits(&y1.data), "{threads}");
            std::fs::remove_file(d("y2.npy")).unwrap();
        }
        std::fs::remove_file(d("y1.npy")).unwrap();
    }
    // A token model (checked by `Model::forward`, its index mapped to the file's): the bad
    // value in the second sample of a batch, f32 and int8 (16-bit input) alike.
    let tg = golden().join("mlp_32to64_h6");
    let tx = npy::read_f32(&tg.join("input.npy")).unwrap();
    let n = tx.data.len();
    let mut shape = tx.shape.clone();
    shape[0] = 2;
    let mut data = [tx.data.clone(), tx.data.clone()].concat();
    data[n + 5] = f32::NAN;
    npy::write_f32(&d("tok_bad.npy"), &shape, &data).unwrap();
    let tblob = d("tok.ldp");
    convert(&tg.join("weights.safetensors"), "6x6", "f32", &tblob);
    let tblob8 = d("tok8.ldp");
    ok(&[
        "convert",
        "--weights",
        &p(&tg.join("weights.safetensors")),
        "--grid",
        "6x6",
        "--dtype",
        "int8",
        "--calib",
        &p(&tg.join("calib.npy")),
        "-o",
        &p(&tblob8),
    ]);
    // One thread reads and runs in turn; two or more read the next sample on a reader thread.
    for threads in ["1", "2"] {
        for b in [&tblob, &tblob8] {
            let mut v = runv(b, &d("tok_bad.npy"), &d("y.npy"));
            v.extend(["--threads".to_string(), threads.to_string()]);
            let e = fails(&v, "non-finite value");
            assert!(e.contains(&format!("flat index {}", n + 5)), "{e}");
            assert!(!d("y.npy").exists(), "a failed run left an output");
        }
        // A batch file that ends inside its second sample: refused (its length is checked
        // against the header when opened), no output.
        let mut bytes = std::fs::read(d("tok_bad.npy")).unwrap();
        bytes.truncate(bytes.len() - 8);
        std::fs::write(d("tok_short.npy"), &bytes).unwrap();
        let mut v = runv(&tblob, &d("tok_short.npy"), &d("y.npy"));
        v.extend(["--threads".to_string(), threads.to_string()]);
        fails(&v, "tok_short.npy");
        assert!(!d("y.npy").exists(), "a failed run left an output");
    }
    // A failed write (no such directory) leaves no file behind either.
    fails(
        &runv(&blob, &input, &d("no/such/dir/y.npy")),
        "cannot write",
    );
    run(&blob, &input, &d("y.npy"));
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // --grid with a sign: a clear message, not clap's "unexpected argument".
    let gridv = |g: &str| -> Vec<String> {
        [
            "convert",
            "--weights",
            &p(&w),
            "--grid",
            g,
            "--dtype",
            "f32",
            "-o",
            &p(&d("g.ldp")),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    fails(&gridv("-1x8"), "grid must be HxW with positive integers");
    fails(&gridv("8x-8"), "grid must be HxW with positive integers");
    fails(&gridv("0x8"), "grid must be HxW with positive integers");
}

/// Calibration sets that cannot work are refused; weak ones are accepted with a warning that
/// says what to supply instead.
#[test]
fn degenerate_calibration_is_refused_or_warned() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let g = golden().join("ldp_c16_8x8");
    let w = p(&g.join("weights.safetensors"));
    let cal = npy::read_f32(&g.join("calib.npy")).unwrap();
    let per = cal.data.len() / cal.shape[0];
    let convert8 = |c: &Path| -> Vec<String> {
        [
            "convert",
            "--weights",
            &w,
            "--grid",
            "8x8",
            "--dtype",
            "int8",
            "--calib",
            &p(c),
            "-o",
            &p(&d("out.ldp")),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let write = |name: &str, shape: &[usize], data: &[f32]| -> PathBuf {
        let path = d(name);
        npy::write_f32(&path, shape, data).unwrap();
        path
    };

    // Refused: all zero, constant, non-finite. No output is written.
    let zeros = write("zeros.npy", &cal.shape, &vec![0.0; cal.data.len()]);
    fails(&convert8(&zeros), "zero variance");
    let constant = write("const.npy", &cal.shape, &vec![0.75; cal.data.len()]);
    fails(&convert8(&constant), "every calibration value is 0.75");
    let mut nan = cal.data.clone();
    nan[3] = f32::NAN;
    let nan = write("nan.npy", &cal.shape, &nan);
    fails(&convert8(&nan), "non-finite");
    assert!(!d("out.ldp").exists());

    // Warned: a single sample, tiny magnitude, one dominating value. Each converts (exit 0)
    // with a `warning:` line on stderr naming the problem and what to supply.
    let mut one_shape = cal.shape.clone();
    one_shape[0] = 1;
    let one = write("one.npy", &one_shape, &cal.data[..per]);
    let tiny: Vec<f32> = cal.data.iter().map(|v| v * 1e-7).collect();
    let tiny = write("tiny.npy", &cal.shape, &tiny);
    let mut spike = cal.data.clone();
    let m = spike.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    spike[per + 5] = 1000.0 * m;
    let spike = write("spike.npy", &cal.shape, &spike);
    for (path, needle) in [
        (&one, "single sample"),
        (&tiny, "tiny"),
        (&spike, "one value sets the calibration range"),
    ] {
        let (success, err) = status_and_stderr(&convert8(path));
        assert!(success, "{needle}: {err}");
        let warn: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
        assert!(
            warn.iter()
                .any(|l| l.contains(needle) && l.contains("supply")),
            "{needle}: {err}"
        );
        println!("  {}\n    -> {}", path.display(), warn.join("\n       "));
    }
    // The golden calibration set itself draws no warning.
    let (success, err) = status_and_stderr(&convert8(&g.join("calib.npy")));
    assert!(success && !err.contains("warning"), "{err}");
}

/// `ldp-quant run` on `ldp` samples large enough to be read in several channel groups (16
/// channels of 64 × 80: groups of 12 and 4), f32 and int8, one thread and two (a reader thread
/// preparing the next sample): each output sample equals the library's whole-sample path
/// (`tensor::nchw_to_nhwc`, `Model::forward`, `tensor::nhwc_to_nchw`) bit for bit, and a
/// non-finite value in the second group of the second sample is reported at its index in the
/// file.
#[test]
fn ldp_samples_read_in_channel_groups_match_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n);
    let g = golden().join("ldp_c16_8x8");
    let (c, h, w) = (16usize, 64usize, 80usize);
    let n1 = c * h * w;
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
    };
    let x: Vec<f32> = (0..2 * n1).map(|_| next()).collect();
    npy::write_f32(&d("x.npy"), &[2, c, h, w], &x).unwrap();
    let calib: Vec<f32> = (0..3 * n1).map(|_| next()).collect();
    npy::write_f32(&d("calib.npy"), &[3, c, h, w], &calib).unwrap();
    let mut bad = x.clone();
    let at = n1 + 13 * h * w + 7;
    bad[at] = f32::INFINITY;
    npy::write_f32(&d("bad.npy"), &[2, c, h, w], &bad).unwrap();
    let weights = p(&g.join("weights.safetensors"));
    for dtype in ["f32", "int8"] {
        let blob = d(&format!("m_{dtype}.ldp"));
        let mut v: Vec<String> = ["convert", "--weights", &weights, "--grid", "64x80"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(["--dtype".into(), dtype.into()]);
        if dtype == "int8" {
            v.extend(["--calib".into(), p(&d("calib.npy"))]);
        }
        v.extend(["-o".into(), p(&blob)]);
        ok(&v);
        // The library, one whole sample at a time.
        let bytes = ldp_quant::AlignedBytes::read_file(&blob).unwrap();
        let model = ldp_core::Model::parse(bytes.as_bytes()).unwrap();
        let mut scratch = ldp_quant::AlignedBytes::zeroed(model.scratch_bytes());
        let n_out = model.output_len();
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        let mut want = Vec::new();
        for s in x.chunks(n1) {
            let mut xs = vec![0.0f32; n1];
            ldp_core::tensor::nchw_to_nhwc(s, &mut xs, c, h, w).unwrap();
            let mut ys = vec![0.0f32; n_out];
            model.forward(&xs, &mut ys, scratch.as_mut_bytes()).unwrap();
            let mut y = vec![0.0f32; n_out];
            ldp_core::tensor::nhwc_to_nchw(&ys, &mut y, n_out / (h2 * w2), h2, w2).unwrap();
            want.extend(y.iter().map(|v| v.to_bits()));
        }
        for threads in ["1", "2"] {
            let runt = |input: &Path, out: &Path| -> Vec<String> {
                let mut v: Vec<String> = ["run", "--model", &p(&blob), "--input", &p(input)]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                v.extend(["-o".into(), p(out), "--threads".into(), threads.into()]);
                v
            };
            ok(&runt(&d("x.npy"), &d("y.npy")));
            let y = npy::read_f32(&d("y.npy")).unwrap();
            let got: Vec<u32> = y.data.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got.len(), want.len(), "{dtype} {threads}");
            assert!(
                got == want,
                "{dtype}, {threads} thread(s): not the library's bits"
            );
            std::fs::remove_file(d("y.npy")).unwrap();
            let e = fails(&runt(&d("bad.npy"), &d("y.npy")), "non-finite value");
            assert!(
                e.contains(&format!("flat index {at} ")),
                "{dtype} {threads}: {e}"
            );
            assert!(!d("y.npy").exists(), "a failed run left an output");
        }
    }
}
