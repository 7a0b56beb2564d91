//! Build script of the firmware.
//!
//! * Checks that exactly one board feature is enabled and that the target fits the board.
//! * Puts the board's linker script (`memory.x`, or a whole script for the Cortex-A boards) where
//!   the linker finds it and passes the link arguments.
//! * Reads the model data directory (`LDP_FW_DATA`, default `data/default/`), validates every blob
//!   with `ldp_core::Model::parse`, and generates `models.rs`: the blobs, inputs and expected
//!   outputs as 16-byte aligned statics, and the arena size.
//!
//! On the host (no `target_os = "none"`) it does nothing: the host build is a stub.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

mod build_lm3s;

/// Everything build.rs knows about a board.
struct BoardSpec {
    feature: &'static str,
    target: &'static str,
    /// The linker script file in `memory/`.
    script: &'static str,
    /// `true`: `script` is a cortex-m-rt `memory.x`; `false`: a complete script (Cortex-A).
    cortex_m: bool,
    /// Bytes of RAM the arena plus the output buffer may take.
    arena_cap: usize,
}

const BOARDS: &[BoardSpec] = &[
    BoardSpec {
        feature: "qemu-m4",
        target: "thumbv7em-none-eabihf",
        script: "qemu-mps2.x",
        cortex_m: true,
        arena_cap: 3 << 20,
    },
    BoardSpec {
        feature: "qemu-m7",
        target: "thumbv7em-none-eabihf",
        script: "qemu-mps2.x",
        cortex_m: true,
        arena_cap: 3 << 20,
    },
    BoardSpec {
        feature: "qemu-m55",
        target: "thumbv8m.main-none-eabihf",
        script: "qemu-mps3-an547.x",
        cortex_m: true,
        // Arena and output buffer in the DDR after the model data (memory/qemu-mps3-an547.x).
        arena_cap: 24 << 20,
    },
    BoardSpec {
        feature: "qemu-m3",
        target: "thumbv7m-none-eabi",
        script: "qemu-mps2.x",
        cortex_m: true,
        arena_cap: 3 << 20,
    },
    BoardSpec {
        feature: "qemu-lm3s",
        target: "thumbv7m-none-eabi",
        script: "qemu-lm3s.x",
        cortex_m: true,
        // Runs the streaming executor on its own data (build_lm3s.rs), no whole-tensor model.
        arena_cap: 0,
    },
    BoardSpec {
        feature: "qemu-a53",
        target: "aarch64-unknown-none",
        script: "qemu-virt-a64.ld",
        cortex_m: false,
        arena_cap: 96 << 20,
    },
    BoardSpec {
        feature: "qemu-a76",
        target: "aarch64-unknown-none",
        script: "qemu-virt-a64.ld",
        cortex_m: false,
        arena_cap: 96 << 20,
    },
    BoardSpec {
        feature: "nrf52840",
        target: "thumbv7em-none-eabihf",
        script: "nrf52840.x",
        cortex_m: true,
        arena_cap: 192 << 10,
    },
    BoardSpec {
        feature: "h743",
        target: "thumbv7em-none-eabihf",
        script: "h743.x",
        cortex_m: true,
        arena_cap: 448 << 10,
    },
    BoardSpec {
        feature: "rpi4",
        target: "aarch64-unknown-none",
        script: "rpi4.ld",
        cortex_m: false,
        arena_cap: 256 << 20,
    },
];

fn feature_env(feature: &str) -> String {
    format!("CARGO_FEATURE_{}", feature.to_uppercase().replace('-', "_"))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-env-changed=LDP_FW_DATA");
    println!("cargo:rerun-if-env-changed=LDP_FW_SELFTEST");
    println!("cargo:rustc-check-cfg=cfg(ldp_selftest, values(\"panic\", \"fault\"))");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return; // host stub
    }
    if let Err(e) = run() {
        // A readable message instead of a backtrace.
        eprintln!("\nfirmware build.rs: {e}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let enabled: Vec<&BoardSpec> = BOARDS
        .iter()
        .filter(|b| env::var_os(feature_env(b.feature)).is_some())
        .collect();
    let names: Vec<&str> = BOARDS.iter().map(|b| b.feature).collect();
    let board = match enabled.as_slice() {
        [b] => *b,
        [] => {
            return Err(format!(
                "no board feature enabled: pass exactly one of --features {}",
                names.join(" | ")
            ))
        }
        many => {
            let got: Vec<&str> = many.iter().map(|b| b.feature).collect();
            return Err(format!(
                "several board features enabled ({}): enable exactly one",
                got.join(", ")
            ));
        }
    };
    let target = env::var("TARGET").map_err(|e| e.to_string())?;
    if target != board.target {
        return Err(format!(
            "board `{}` needs --target {}, but the target is {target}",
            board.feature, board.target
        ));
    }

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);

    // Linker scripts.
    let script = fs::read(manifest_dir.join("memory").join(board.script))
        .map_err(|e| format!("reading memory/{}: {e}", board.script))?;
    if board.cortex_m {
        fs::write(out.join("memory.x"), script).map_err(|e| e.to_string())?;
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg-bins=--nmagic");
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    } else {
        let path = out.join("ldp-a64.ld");
        fs::write(&path, script).map_err(|e| e.to_string())?;
        println!("cargo:rustc-link-arg-bins=--nmagic");
        println!("cargo:rustc-link-arg-bins=-T{}", path.display());
    }
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");

    // Self-test of the failure paths (`cargo xtask fault-test`): panic or fault at start-up.
    match env::var("LDP_FW_SELFTEST").as_deref() {
        Ok("panic") => println!("cargo:rustc-cfg=ldp_selftest=\"panic\""),
        Ok("fault") => println!("cargo:rustc-cfg=ldp_selftest=\"fault\""),
        Ok("") | Err(_) => {}
        Ok(other) => {
            return Err(format!(
                "LDP_FW_SELFTEST={other}: expected `panic` or `fault`"
            ))
        }
    }

    // Serve mode: no embedded model, a pool for uploaded blobs (src/serve.rs).
    if env::var_os("CARGO_FEATURE_SERVE").is_some() {
        return serve(board, &out);
    }

    // Model data. `qemu-lm3s` streams one model from its own directory instead.
    if board.feature == "qemu-lm3s" {
        let code = build_lm3s::generate(&manifest_dir.join("data").join("qemu-lm3s"))?;
        fs::write(out.join("stream_data.rs"), code).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let data_dir = match env::var_os("LDP_FW_DATA") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                manifest_dir.join(p)
            }
        }
        _ => manifest_dir.join("data").join("default"),
    };
    let data_dir = data_dir
        .canonicalize()
        .map_err(|e| format!("model data directory {}: {e}", data_dir.display()))?;
    let code = generate(&data_dir, board)?;
    fs::write(out.join("models.rs"), code).map_err(|e| e.to_string())?;
    Ok(())
}

/// One manifest line, validated.
struct Entry {
    arch: String,
    dtype: String,
    blob: PathBuf,
    blob_len: usize,
    input: PathBuf,
    input_len: usize,
    expected: PathBuf,
    expected_len: usize,
    tolerance: String,
    scratch_bytes: usize,
    macs: usize,
    params: usize,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    println!("cargo:rerun-if-changed={}", path.display());
    fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

fn parse_manifest(dir: &Path) -> Result<Vec<Entry>, String> {
    let manifest = dir.join("manifest.txt");
    let text = String::from_utf8(read(&manifest)?)
        .map_err(|_| format!("{} is not UTF-8", manifest.display()))?;
    let mut entries = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let where_ = format!("{}:{}", manifest.display(), no + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [arch, dtype, blob, input, expected, tolerance] = f.as_slice() else {
            return Err(format!(
                "{where_}: expected 6 fields `arch dtype blob_file input_file expected_file tolerance`, got {}",
                f.len()
            ));
        };
        if !["ldp", "mobilevlm-v1", "mobilevlm-v2", "mlp2x-gelu"].contains(arch) {
            return Err(format!("{where_}: unknown arch `{arch}`"));
        }
        if !["f32", "f16", "int8"].contains(dtype) {
            return Err(format!("{where_}: unknown dtype `{dtype}`"));
        }
        if *tolerance != "exact" {
            match tolerance.parse::<f64>() {
                Ok(t) if t.is_finite() && t >= 0.0 => {}
                _ => {
                    return Err(format!(
                        "{where_}: tolerance must be `exact` or a relative-L2 bound like 1e-5, got `{tolerance}`"
                    ))
                }
            }
        }
        let blob_path = dir.join(blob);
        let bytes = read(&blob_path)?;
        // Model::parse wants a 16-byte aligned slice.
        let mut aligned = vec![0u128; bytes.len().div_ceil(16)];
        let view: &mut [u8] = bytemuck_bytes(&mut aligned);
        view[..bytes.len()].copy_from_slice(&bytes);
        let model = ldp_core::Model::parse(&view[..bytes.len()])
            .map_err(|e| format!("{where_}: {}: {e}", blob_path.display()))?;
        if model.arch().name() != *arch || model.dtype().name() != *dtype {
            return Err(format!(
                "{where_}: manifest says {arch}/{dtype} but {} holds {}/{}",
                blob_path.display(),
                model.arch().name(),
                model.dtype().name()
            ));
        }
        let cfg = model.config();
        let input_path = dir.join(input);
        let expected_path = dir.join(expected);
        let input_len = read(&input_path)?.len();
        let expected_len = read(&expected_path)?.len();
        if input_len != cfg.input_len() * 4 {
            return Err(format!(
                "{where_}: {} has {input_len} bytes, the model takes {} f32 ({} bytes)",
                input_path.display(),
                cfg.input_len(),
                cfg.input_len() * 4
            ));
        }
        if expected_len != cfg.output_len() * 4 {
            return Err(format!(
                "{where_}: {} has {expected_len} bytes, the model gives {} f32 ({} bytes)",
                expected_path.display(),
                cfg.output_len(),
                cfg.output_len() * 4
            ));
        }
        entries.push(Entry {
            arch: arch.to_string(),
            dtype: dtype.to_string(),
            blob: blob_path,
            blob_len: bytes.len(),
            input: input_path,
            input_len,
            expected: expected_path,
            expected_len,
            tolerance: tolerance.to_string(),
            scratch_bytes: model.scratch_bytes(),
            macs: cfg.macs(),
            params: cfg.param_count(),
        });
    }
    Ok(entries)
}

fn bytemuck_bytes(v: &mut [u128]) -> &mut [u8] {
    let len = std::mem::size_of_val(v);
    // SAFETY: u128 has no padding and every byte pattern is a valid u8; the length is exact.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), len) }
}

fn lit(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn generate(dir: &Path, board: &BoardSpec) -> Result<String, String> {
    let entries = parse_manifest(dir)?;
    if entries.is_empty() {
        return Err(format!(
            "{} lists no model",
            dir.join("manifest.txt").display()
        ));
    }
    let fits = |e: &Entry| e.scratch_bytes + e.expected_len <= board.arena_cap;
    let arena = entries
        .iter()
        .filter(|e| fits(e))
        .map(|e| e.scratch_bytes)
        .max()
        .unwrap_or(0);
    let output_len = entries
        .iter()
        .filter(|e| fits(e))
        .map(|e| e.expected_len / 4)
        .max()
        .unwrap_or(0);
    for e in entries.iter().filter(|e| !fits(e)) {
        println!(
            "cargo:warning=board {}: {}/{} needs {} bytes of scratch + {} of output, above the board's {} bytes: it will be skipped",
            board.feature, e.arch, e.dtype, e.scratch_bytes, e.expected_len, board.arena_cap
        );
    }

    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "// @generated by firmware/build.rs from {}. Do not edit.",
        dir.join("manifest.txt").display()
    );
    let _ = writeln!(w, "/// The board feature this image was built for.");
    let _ = writeln!(w, "pub const BOARD: &str = {:?};", board.feature);
    let marker = format!(
        "LDP_BOARD_{}",
        board.feature.to_uppercase().replace('-', "_")
    );
    let _ = writeln!(
        w,
        "/// Marker symbol: tells host tools (the xtask runner) which board this ELF is for."
    );
    let _ = writeln!(w, "#[no_mangle]\n#[used]\npub static {marker}: u8 = 0;");
    let _ = writeln!(
        w,
        "/// Keeps the marker symbol through the linker's garbage collection."
    );
    let _ = writeln!(
        w,
        "pub fn keep_board_marker() {{ let _ = unsafe {{ core::ptr::read_volatile(core::ptr::addr_of!({marker})) }}; }}"
    );
    let _ = writeln!(w, "/// The model data directory this image embeds.");
    let _ = writeln!(w, "pub const DATA_DIR: &str = {};", lit(dir));
    let _ = writeln!(
        w,
        "/// Bytes of the static arena: the largest scratch of the models that fit the board."
    );
    let _ = writeln!(w, "pub const ARENA_BYTES: usize = {arena};");
    let _ = writeln!(w, "/// f32 elements of the output buffer.");
    let _ = writeln!(w, "pub const OUTPUT_LEN: usize = {output_len};");
    // One static per distinct file: models that share an input or expected output (an f32 and
    // an f16 model of the same case) share the bytes.
    let mut statics: Vec<(PathBuf, String)> = Vec::new();
    let mut refs: Vec<[String; 3]> = Vec::new();
    for e in &entries {
        let mut r: [String; 3] = Default::default();
        for (k, (kind, path, len)) in [
            ("BLOB", &e.blob, e.blob_len),
            ("INPUT", &e.input, e.input_len),
            ("EXPECTED", &e.expected, e.expected_len),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some((_, name)) = statics.iter().find(|(p, _)| p == path) {
                r[k] = name.clone();
                continue;
            }
            let name = format!("{kind}_{}", statics.len());
            if kind == "BLOB" {
                let _ = writeln!(
                    w,
                    "#[link_section = \".ldp_data.{name}\"]\nstatic {name}: Aligned<[u8; {len}]> = Aligned(*include_bytes!({}));",
                    lit(path)
                );
            } else {
                let _ = writeln!(
                    w,
                    "// SAFETY: same size; every bit pattern is a valid f32; the targets are little-endian like the file.\n\
                     #[link_section = \".ldp_data.{name}\"]\n\
                     static {name}: Aligned<[f32; {n}]> = Aligned(unsafe {{ core::mem::transmute::<[u8; {len}], [f32; {n}]>(*include_bytes!({p})) }});",
                    n = len / 4,
                    p = lit(path)
                );
            }
            statics.push((path.clone(), name.clone()));
            r[k] = name;
        }
        refs.push(r);
    }
    let _ = writeln!(w, "/// The embedded models, in manifest order.");
    let _ = writeln!(w, "pub static MODELS: [Embedded; {}] = [", entries.len());
    for (i, e) in entries.iter().enumerate() {
        let tol = if e.tolerance == "exact" {
            "Tolerance::Exact".to_string()
        } else {
            let v: f64 = e.tolerance.parse().unwrap_or(0.0);
            format!("Tolerance::RelL2({v:?})")
        };
        let _ = writeln!(
            w,
            "    Embedded {{ arch: {:?}, dtype: {:?}, blob: &{}.0, input: &{}.0, expected: &{}.0, tolerance: {tol}, scratch_bytes: {}, macs: {}, params: {} }},",
            e.arch, e.dtype, refs[i][0], refs[i][1], refs[i][2], e.scratch_bytes, e.macs, e.params
        );
    }
    let _ = writeln!(w, "];");
    Ok(s)
}

/// Boards with a serve mode: their UART driver exists (src/uart.rs). The QEMU ones are tested
/// (`cargo xtask device`); `nrf52840` and `rpi4` are built only (no hardware here).
const SERVE_BOARDS: &[&str] = &[
    "qemu-m4", "qemu-m7", "qemu-m3", "qemu-a53", "qemu-a76", "nrf52840", "rpi4",
];

/// Writes `serve_board.rs` for the serve firmware: board name and marker, the pool size (the
/// board's arena budget) and the receive timeout.
fn serve(board: &BoardSpec, out: &Path) -> Result<(), String> {
    if !SERVE_BOARDS.contains(&board.feature) {
        return Err(format!(
            "the `serve` feature is available on {} (not yet on {})",
            SERVE_BOARDS.join(", "),
            board.feature
        ));
    }
    if env::var_os("CARGO_FEATURE_PERF").is_some() {
        return Err("`serve` and `perf` are separate firmware modes: enable one".into());
    }
    let marker = format!(
        "LDP_BOARD_{}",
        board.feature.to_uppercase().replace('-', "_")
    );
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "// @generated by firmware/build.rs (serve mode). Do not edit."
    );
    let _ = writeln!(w, "/// The board feature this image was built for.");
    let _ = writeln!(w, "pub const BOARD: &str = {:?};", board.feature);
    let _ = writeln!(
        w,
        "/// Bytes of the static pool that holds the uploaded blob, the arena and the buffers."
    );
    let _ = writeln!(w, "pub const POOL_BYTES: usize = {};", board.arena_cap);
    let _ = writeln!(
        w,
        "/// Empty UART polls after which a frame whose bytes stopped is abandoned."
    );
    // About 2 s in QEMU and well under a second on the 64 MHz Cortex-M boards; the Pi 4's core
    // polls an order of magnitude faster.
    let polls = if board.feature == "rpi4" {
        30_000_000
    } else {
        3_000_000
    };
    let _ = writeln!(w, "pub const TIMEOUT_POLLS: u32 = {polls};");
    let _ = writeln!(
        w,
        "/// Marker symbol: tells host tools (the xtask runner) which board this ELF is for."
    );
    let _ = writeln!(w, "#[no_mangle]\n#[used]\npub static {marker}: u8 = 0;");
    let _ = writeln!(w, "#[no_mangle]\n#[used]\npub static LDP_SERVE: u8 = 0;");
    let _ = writeln!(
        w,
        "/// Keeps the marker symbols through the linker's garbage collection."
    );
    let _ = writeln!(
        w,
        "pub fn keep_board_marker() {{ let _ = unsafe {{ core::ptr::read_volatile(core::ptr::addr_of!({marker})) }}; let _ = unsafe {{ core::ptr::read_volatile(core::ptr::addr_of!(LDP_SERVE)) }}; }}"
    );
    fs::write(out.join("serve_board.rs"), s).map_err(|e| e.to_string())
}
