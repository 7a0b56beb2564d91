//! Model data directories for the firmware (`manifest.txt` + blobs + raw f32 vectors):
//! `gen-default` (from the golden cases) and the data of `xtask run --weights`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::npy;
use crate::tools;
use crate::Ctx;

/// The golden cases embedded by default: one small case per architecture.
pub const DEFAULT_CASES: [&str; 4] = [
    "ldp_c16_8x8",
    "v1_32to64_h6",
    "v2_32to64_h6",
    "mlp_32to64_h6",
];

/// Golden cases embedded as int8 only: the heavy-tailed V2 case, whose int8 blob has 16-bit
/// activations (`ldp-quant --activations auto`), and the heavy-tailed `mlp2x-gelu` case, whose
/// blob has a 16-bit input (`--input-quant auto`), so every board checks those paths bit for bit.
pub const INT8_ONLY_CASES: [&str; 2] = ["v2_8to16_h24_heavy", "mlp_32to64_h12_heavy"];

/// Cases embedded once more as int8 with int8 activations (`--activations int8`, blob
/// `CASE.int8a8.ldp`): MobileVLM V1's int8 default has 16-bit activations, so this keeps its
/// int8-activation path (row-fused LayerNorm, int8 squeeze-excitation) checked on every board.
pub const INT8_ACT8_CASES: [&str; 1] = ["v1_32to64_h6"];

/// Relative-L2 bounds of the float dtypes against an f32/f64 reference.
pub fn float_tolerance(dtype: &str) -> &'static str {
    if dtype == "f16" {
        "5e-3"
    } else {
        "1e-5"
    }
}

/// Builds `ldp-quant` (release) and returns its path.
pub fn ldp_quant(ctx: &Ctx) -> Result<PathBuf, String> {
    tools::run(Command::new(&ctx.cargo).current_dir(&ctx.root).args([
        "build",
        "--release",
        "-p",
        "ldp-quant",
    ]))
    .map_err(|e| {
        format!("{e}\n(ldp-quant is the workspace's converter; it must build for this step)")
    })?;
    let exe = ctx
        .target_dir
        .join("release")
        .join(format!("ldp-quant{}", std::env::consts::EXE_SUFFIX));
    if exe.exists() {
        Ok(exe)
    } else {
        Err(format!("ldp-quant built but {} is missing", exe.display()))
    }
}

/// `ldp-quant convert` (with `extra` arguments); the error text on failure.
#[allow(clippy::too_many_arguments)]
pub fn convert(
    lq: &Path,
    weights: &Path,
    arch: Option<&str>,
    grid: &str,
    dtype: &str,
    calib: Option<&Path>,
    out: &Path,
    extra: &[&str],
) -> Result<(), String> {
    let mut cmd = Command::new(lq);
    cmd.arg("convert").arg("--weights").arg(weights);
    if let Some(a) = arch {
        cmd.args(["--arch", a]);
    }
    cmd.args(["--grid", grid, "--dtype", dtype]);
    cmd.args(extra);
    if let Some(c) = calib {
        cmd.arg("--calib").arg(c);
    }
    cmd.arg("-o").arg(out);
    capture(&mut cmd)
}

/// `ldp-quant run`.
pub fn run_model(lq: &Path, model: &Path, input: &Path, out: &Path) -> Result<(), String> {
    let mut cmd = Command::new(lq);
    cmd.arg("run")
        .arg("--model")
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("-o")
        .arg(out);
    capture(&mut cmd)
}

/// Runs `cmd`, printing the command; on failure the error holds its stderr.
fn capture(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {}", tools::show(cmd));
    let o = cmd
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", tools::show(cmd)))?;
    let text = String::from_utf8_lossy(&o.stdout);
    for l in text.lines() {
        eprintln!("  {l}");
    }
    if o.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&o.stderr);
        Err(format!(
            "`{}` failed ({}): {}",
            tools::show(cmd),
            o.status,
            err.trim()
        ))
    }
}

/// A `.npy` sample (PyTorch layout) → raw channels-last f32 bytes.
pub fn npy_to_raw(path: &Path) -> Result<(Vec<usize>, Vec<u8>), String> {
    let a = npy::read(path)?;
    let cl: Vec<f32> = npy::to_channels_last(&a)?
        .into_iter()
        .map(|v| v as f32)
        .collect();
    Ok((a.shape, npy::f32_bytes(&cl)))
}

/// The `--grid` of a PyTorch-layout sample: `[1, C, H, W]` → `HxW`; `[1, N, C]` → `hxh`.
pub fn grid_of(shape: &[usize]) -> Result<String, String> {
    match shape {
        [1, _, h, w] => Ok(format!("{h}x{w}")),
        [1, n, _] => {
            let h = (*n as f64).sqrt().round() as usize;
            if h * h == *n {
                Ok(format!("{h}x{h}"))
            } else {
                Err(format!("{n} tokens is not a square grid"))
            }
        }
        s => Err(format!("unexpected input shape {s:?}")),
    }
}

/// Relative L2 error between two raw f32 buffers.
pub fn rel_l2(a: &[u8], b: &[u8]) -> f64 {
    let f = |x: &[u8]| -> Vec<f64> {
        x.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect()
    };
    let (a, b) = (f(a), f(b));
    let num: f64 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    if den > 0.0 {
        (num / den).sqrt()
    } else {
        num.sqrt()
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `cargo xtask gen-default`: regenerates `firmware/data/default/` from the golden cases.
pub fn gen_default(ctx: &Ctx) -> Result<(), String> {
    let golden = ctx.root.join("host-tests/golden");
    for case in DEFAULT_CASES.iter().chain(&INT8_ONLY_CASES) {
        for f in ["weights.safetensors", "input.npy", "expected.npy"] {
            let p = golden.join(case).join(f);
            if !p.exists() {
                return Err(format!(
                    "{} is missing: the golden cases must exist first (tools/golden/)",
                    p.display()
                ));
            }
        }
    }
    let lq = ldp_quant(ctx)?;
    let dest = ctx.root.join("firmware/data/default");
    let staging = ctx.work_dir().join("gen-default");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;

    let mut manifest = String::from(
        "# Generated by `cargo xtask gen-default` from host-tests/golden/ with ldp-quant.\n\
         # arch dtype blob_file input_file expected_file tolerance\n\
         # f32/f16: expected = PyTorch float64 output (channels-last f32), relative-L2 bound.\n\
         # int8: expected = `ldp-quant run` of the same blob on the host, bit-identical.\n",
    );
    let mut skipped = Vec::new();
    for case in DEFAULT_CASES.iter().chain(&INT8_ONLY_CASES) {
        let case = *case;
        // (file tag, dtype, extra convert arguments)
        let mut kinds: Vec<(&str, &str, &[&str])> = if INT8_ONLY_CASES.contains(&case) {
            vec![("int8", "int8", &[])]
        } else {
            vec![
                ("f32", "f32", &[]),
                ("f16", "f16", &[]),
                ("int8", "int8", &[]),
            ]
        };
        if INT8_ACT8_CASES.contains(&case) {
            kinds.push(("int8a8", "int8", &["--activations", "int8"]));
        }
        let dir = golden.join(case);
        let arch = match &case[..3] {
            "ldp" => "ldp",
            "v1_" => "mobilevlm-v1",
            "mlp" => "mlp2x-gelu",
            _ => "mobilevlm-v2",
        };
        let weights = dir.join("weights.safetensors");
        let input_npy = dir.join("input.npy");
        let (shape, input_raw) = npy_to_raw(&input_npy)?;
        let grid = grid_of(&shape)?;
        let (_, expected_raw) = npy_to_raw(&dir.join("expected.npy"))?;
        let input_file = format!("{case}.input.f32");
        let expected_file = format!("{case}.expected.f32");
        write(&staging.join(&input_file), &input_raw)?;
        write(&staging.join(&expected_file), &expected_raw)?;
        for &(tag, dtype, extra) in &kinds {
            let blob_file = format!("{case}.{tag}.ldp");
            let blob = staging.join(&blob_file);
            let calib = dir.join("calib.npy");
            let calib = (dtype == "int8").then_some(calib.as_path());
            if let Err(e) = convert(&lq, &weights, Some(arch), &grid, dtype, calib, &blob, extra) {
                if dtype == "int8" {
                    eprintln!("note: {case} int8 skipped: {e}");
                    skipped.push(format!("{case}/int8"));
                    continue;
                }
                return Err(e);
            }
            // Host run of the blob: the int8 expected output, and a check of the float ones.
            let host_npy = staging.join(format!("{case}.{tag}.host.npy"));
            let host = run_model(&lq, &blob, &input_npy, &host_npy)
                .and_then(|_| npy_to_raw(&host_npy).map(|(_, raw)| raw));
            let _ = std::fs::remove_file(&host_npy);
            let line = match dtype {
                "int8" => match host {
                    Ok(raw) => {
                        let f = format!("{case}.{tag}.expected.f32");
                        write(&staging.join(&f), &raw)?;
                        eprintln!(
                            "  {case} int8: host int8 output vs PyTorch float64: relative L2 {:.3e}",
                            rel_l2(&raw, &expected_raw)
                        );
                        format!("{arch} int8 {blob_file} {input_file} {f} exact")
                    }
                    Err(e) => {
                        eprintln!("note: {case} int8 skipped (host run failed): {e}");
                        skipped.push(format!("{case}/int8"));
                        let _ = std::fs::remove_file(&blob);
                        continue;
                    }
                },
                _ => {
                    let tol = float_tolerance(dtype);
                    let raw = host?;
                    let err = rel_l2(&raw, &expected_raw);
                    eprintln!("  {case} {dtype}: host vs PyTorch float64: relative L2 {err:.3e} (bound {tol})");
                    if err > tol.parse::<f64>().unwrap_or(0.0) {
                        return Err(format!(
                            "{case} {dtype}: the host run is already outside the bound {tol} ({err:.3e})"
                        ));
                    }
                    format!("{arch} {dtype} {blob_file} {input_file} {expected_file} {tol}")
                }
            };
            manifest.push_str(&line);
            manifest.push('\n');
        }
    }
    write(&staging.join("manifest.txt"), manifest.as_bytes())?;

    // Replace the directory's contents.
    std::fs::create_dir_all(&dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    for entry in std::fs::read_dir(&dest)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        if entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    for entry in std::fs::read_dir(&staging)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let to = dest.join(entry.file_name());
        std::fs::copy(entry.path(), &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    println!("wrote {}:", dest.display());
    print!("{manifest}");
    if !skipped.is_empty() {
        println!(
            "skipped (int8 not available in ldp-quant yet; re-run gen-default once it is): {}",
            skipped.join(", ")
        );
    }
    Ok(())
}

/// A deterministic input in the model's PyTorch layout: roughly standard-normal values
/// (sum of four uniforms), fixed seed.
pub fn synthetic_input(shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut uniform = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f64) / (1u64 << 24) as f64 - 0.5
    };
    (0..n)
        .map(|_| ((uniform() + uniform() + uniform() + uniform()) * 3f64.sqrt()) as f32)
        .collect()
}

/// What `xtask run --weights` makes: a data directory with one model.
pub struct RunData {
    pub dir: PathBuf,
}

/// Options of `xtask run` that describe the model.
pub struct ModelArgs<'a> {
    pub weights: &'a Path,
    pub arch: Option<&'a str>,
    pub grid: &'a str,
    pub dtype: &'a str,
    pub calib: Option<&'a Path>,
}

/// Quantizes the user's weights and makes the test vector (step 1 of `xtask run`).
pub fn prepare_run(ctx: &Ctx, m: &ModelArgs) -> Result<RunData, String> {
    let lq = ldp_quant(ctx)?;
    let dir = ctx.work_dir().join("run-data");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let blob = dir.join(format!("model.{}.ldp", m.dtype));
    convert(&lq, m.weights, m.arch, m.grid, m.dtype, m.calib, &blob, &[])?;
    let bytes = std::fs::read(&blob).map_err(|e| format!("{}: {e}", blob.display()))?;
    let header = crate::blob_header(&bytes)?;
    // Input in PyTorch layout.
    let shape: Vec<usize> = if header.arch == "ldp" {
        vec![1, header.c_in, header.h, header.w]
    } else {
        vec![1, header.h * header.w, header.c_in]
    };
    let input = synthetic_input(&shape);
    let input_npy = dir.join("input.npy");
    npy::write_f32(&input_npy, &shape, &input)?;
    // Reference: the host f32 run for float dtypes, the host int8 run for int8.
    let reference = if m.dtype == "int8" || m.dtype == "f32" {
        blob.clone()
    } else {
        let r = dir.join("reference.f32.ldp");
        convert(&lq, m.weights, m.arch, m.grid, "f32", None, &r, &[])?;
        r
    };
    let expected_npy = dir.join("expected.npy");
    run_model(&lq, &reference, &input_npy, &expected_npy)?;
    let (_, input_raw) = npy_to_raw(&input_npy)?;
    let (_, expected_raw) = npy_to_raw(&expected_npy)?;
    write(&dir.join("input.f32"), &input_raw)?;
    write(&dir.join("expected.f32"), &expected_raw)?;
    let tol = if m.dtype == "int8" {
        "exact"
    } else {
        float_tolerance(m.dtype)
    };
    let line = format!(
        "# made by `cargo xtask run --weights {}`\n{} {} {} input.f32 expected.f32 {tol}\n",
        m.weights.display(),
        header.arch,
        m.dtype,
        blob.file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("model.ldp"),
    );
    write(&dir.join("manifest.txt"), line.as_bytes())?;
    Ok(RunData { dir })
}
