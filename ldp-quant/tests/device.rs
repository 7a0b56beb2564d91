//! The board as a device in the loop (issue 21): the serve firmware in QEMU, driven through
//! `ldp_quant::device` and through `ldp-quant run --device`.
//!
//! These tests need QEMU and the serve firmware ELFs (`target/xtask/boards/<board>/serve.elf`),
//! so they are `#[ignore]`d in a plain `cargo test`; `cargo xtask test` (its `device` step)
//! builds the firmware and runs them with `--ignored`. Boards: `$LDP_DEVICE_TEST_BOARDS`
//! (comma-separated), default `qemu-m4,qemu-m3,qemu-a53`.
//!
//! Every test uploads the fifteen bundled golden blobs (`firmware/data/default/`: ldp, MobileVLM
//! V1 and V2 and mlp2x-gelu, each f32, f16 and int8 — V1's int8 with 16-bit activations, its
//! default —, plus V1 with int8 activations, the V2 int8 blob with 16-bit activations and the
//! heavy-tailed mlp2x-gelu int8 blob with a 16-bit input) and the
//! heavy-tailed golden `ldp` and V1 cases quantized with an int8 and with a 16-bit input at run time,
//! without a rebuild, and compares the device with the host's forward pass: int8 bit for bit,
//! f32 within 1e-6 relative L2, f16 within 1e-3 (`device::float_bound`). Then the fault cases,
//! each followed by a request that must still work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ldp_core::Model;
use ldp_quant::device::{self, code, ty, Device, SEQ_NONE};
use ldp_quant::AlignedBytes;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn elf(board: &str) -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if !t.is_empty() => PathBuf::from(t),
        _ => root().join("target"),
    };
    let p = target
        .join("xtask")
        .join("boards")
        .join(board)
        .join("serve.elf");
    assert!(
        p.is_file(),
        "{} missing: run `cargo xtask build-serve --board {board}` (or `cargo xtask test`)",
        p.display()
    );
    p
}

fn boards() -> Vec<String> {
    std::env::var("LDP_DEVICE_TEST_BOARDS")
        .unwrap_or_else(|_| "qemu-m4,qemu-m3,qemu-a53".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

struct Case {
    name: String,
    blob: AlignedBytes,
    input: Vec<f32>,
}

/// The bundled golden blobs with their inputs (manifest order).
fn cases() -> Vec<Case> {
    let dir = root().join("firmware/data/default");
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).expect("manifest");
    let mut out = Vec::new();
    for line in manifest.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 6 || f[0].starts_with('#') {
            continue;
        }
        let blob = AlignedBytes::read_file(&dir.join(f[2])).expect("blob");
        let raw = std::fs::read(dir.join(f[3])).expect("input");
        let input = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push(Case {
            name: f[2].to_string(),
            blob,
            input,
        });
    }
    // Four architectures in f32, f16 and int8, plus V1 with int8 activations and the int8-only
    // heavy-tailed V2 (16-bit activations) and mlp2x-gelu (16-bit input) cases.
    assert_eq!(out.len(), 15, "the fifteen bundled golden blobs");
    out
}

/// The heavy-tailed golden `ldp` and V1 cases quantized here twice, with an int8 input and with
/// the 16-bit input `--input-quant auto` picks for them: both must be bit-identical to the host
/// on the board, and the instruction counts side by side give the 16-bit input's cost.
fn input16_cases() -> Vec<Case> {
    use ldp_quant::int8::InputQuant;
    use ldp_quant::quantize::Int8Options;
    let mut out = Vec::new();
    for name in ["ldp_c16_16x16_heavy", "v1_16to32_h12_heavy"] {
        let dir = root().join("host-tests/golden").join(name);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).expect("meta"))
                .expect("meta.json");
        let (h, w) = (
            meta["h"].as_u64().expect("h") as usize,
            meta["w"].as_u64().expect("w") as usize,
        );
        let imp = ldp_quant::import::import_file(&dir.join("weights.safetensors"), None, None)
            .expect("import");
        let model = ldp_quant::FloatModel::from_imported(imp, h, w).expect("model");
        let cfg = model.config();
        let calib =
            ldp_quant::calib::CalibSet::from_npy(&dir.join("calib.npy"), &cfg).expect("calib");
        let input = ldp_quant::npy::read_f32(&dir.join("input.npy")).expect("input");
        let xs = ldp_quant::layout::split_batch(&input, &cfg, "input", false).expect("split");
        for (iq, tag) in [
            (InputQuant::PerTensor, "int8 input"),
            (InputQuant::Int16, "16-bit input"),
        ] {
            // int8 activations (V1's default is 16-bit activations, bundled above).
            let opts = Int8Options {
                input_quant: iq,
                activations: ldp_quant::quantize::Activations::Int8,
                ..Int8Options::default()
            };
            let blob = ldp_quant::int8::quantize(&model, &calib, &opts).expect("quantize");
            let blob = AlignedBytes::from_slice(&blob);
            let m = Model::parse(blob.as_bytes()).expect("parse");
            assert_eq!(
                ldp_core::quant::is_x16(&m),
                iq == InputQuant::Int16,
                "{name}"
            );
            out.push(Case {
                name: format!("{name} ({tag})"),
                blob,
                input: xs[0].clone(),
            });
        }
    }
    // Odd channel counts (the 16-bit-input kernels' channel and output tails), `ldp` with
    // `c_in == c_out` (the skip resizes the 16-bit input), synthetic weights.
    use ldp_core::arch::ldp::LdpConfig;
    use ldp_core::arch::mobilevlm_v1::V1Config;
    use ldp_core::ModelConfig;
    let cfgs = [
        (
            "v1_13to22_h5_x16",
            ModelConfig::MobileVlmV1(V1Config::new(13, 22, 5)),
        ),
        (
            "ldp_11to11_7x5_x16",
            ModelConfig::Ldp(LdpConfig {
                c_in: 11,
                c_out: 11,
                h: 7,
                w: 5,
            }),
        ),
    ];
    for (i, (name, cfg)) in cfgs.into_iter().enumerate() {
        let model = ldp_quant::FloatModel::synthetic(cfg, 31 + i as u64);
        // Heavy-tailed: every 7th value ×20.
        let sample = |seed: u64| -> Vec<f32> {
            let mut s = seed | 1;
            (0..cfg.input_len())
                .map(|j| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                    if j % 7 == 0 {
                        20.0 * v
                    } else {
                        v
                    }
                })
                .collect()
        };
        let calib = ldp_quant::calib::CalibSet {
            config: cfg,
            samples: (0..4).map(|k| sample(100 + k)).collect(),
        };
        let opts = ldp_quant::quantize::Int8Options {
            input_quant: ldp_quant::int8::InputQuant::Int16,
            ..Default::default()
        };
        let blob = ldp_quant::int8::quantize(&model, &calib, &opts).expect("quantize");
        out.push(Case {
            name: name.to_string(),
            blob: AlignedBytes::from_slice(&blob),
            input: sample(999),
        });
    }
    out
}

fn host_forward(model: &Model<'_>, x: &[f32]) -> Vec<f32> {
    let mut scratch = AlignedBytes::zeroed(model.scratch_bytes());
    let mut y = vec![0f32; model.output_len()];
    model
        .forward(x, &mut y, scratch.as_mut_bytes())
        .expect("host forward");
    y
}

/// Uploads and runs every golden blob; checks against the host. Returns a summary line per
/// model.
fn golden(dev: &mut Device, board: &str) -> Vec<String> {
    let f16_arith = dev.hello().expect("hello").get("f16arith") == Some("yes");
    let mut lines = Vec::new();
    for c in cases().into_iter().chain(input16_cases()) {
        let model = Model::parse(c.blob.as_bytes()).expect("parse");
        let up = dev.upload(c.blob.as_bytes()).expect("upload");
        assert_eq!(up.blob_bytes as usize, c.blob.len(), "{}", c.name);
        assert_eq!(
            up.scratch_bytes as usize,
            model.scratch_bytes(),
            "{}",
            c.name
        );
        assert_eq!(up.input_len as usize, model.input_len(), "{}", c.name);
        let r = dev.run(&c.input).expect("run");
        let h = host_forward(&model, &c.input);
        assert_eq!(r.output.len(), h.len(), "{board} {}", c.name);
        let verdict = if model.dtype() == ldp_core::DType::Int8 {
            let diff = r
                .output
                .iter()
                .zip(&h)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                diff, 0,
                "{board} {}: {diff} values differ from the host",
                c.name
            );
            "bit-identical".to_string()
        } else {
            let m = ldp_quant::metrics::compare(&r.output, &h);
            let bound = device::float_bound(model.dtype(), f16_arith);
            assert!(
                m.rel_l2 <= bound,
                "{board} {}: rel L2 {:.3e} > {bound:.0e}",
                c.name,
                m.rel_l2
            );
            format!("rel L2 {:.2e}", m.rel_l2)
        };
        assert!(r.output.iter().all(|v| v.is_finite()));
        assert_eq!(r.arena_bytes as usize, model.scratch_bytes());
        assert!(r.stack_bytes > 0 && r.ram_bytes >= up.ram_bytes);
        // The plugin counts every instruction between the markers (xtask built it).
        assert_eq!(r.counted_by, "plugin", "{board}: instruction count source");
        assert!(
            r.instructions > 1000,
            "{board} {}: {} instructions",
            c.name,
            r.instructions
        );
        lines.push(format!(
            "{board} {:<28} {verdict:<14} {:>11} instructions  arena {:>7} B  stack {:>6} B  RAM {:>7} B",
            c.name, r.instructions, r.arena_bytes, r.stack_bytes, r.ram_bytes
        ));
    }
    lines
}

/// A small valid blob and its input, for the fault cases.
fn small() -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == "ldp_c16_8x8.int8.ldp")
        .expect("small case")
}

fn expect_error(dev: &mut Device, seq: u16, want: u16, what: &str) -> String {
    let f = dev
        .recv_reply(seq)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let e = f
        .error()
        .unwrap_or_else(|| panic!("{what}: expected an ERROR frame, got type {:#04x}", f.ty));
    assert_eq!(e.code, want, "{what}: {}", e.message);
    assert!(!e.message.is_empty());
    e.message
}

/// The device still answers and still runs correctly.
fn still_works(dev: &mut Device, after: &str) {
    let h = dev
        .hello()
        .unwrap_or_else(|e| panic!("HELLO after {after}: {e}"));
    assert_eq!(h.version, device::VERSION);
    let c = small();
    let model = Model::parse(c.blob.as_bytes()).expect("parse");
    dev.upload(c.blob.as_bytes())
        .unwrap_or_else(|e| panic!("UPLOAD after {after}: {e}"));
    let r = dev
        .run(&c.input)
        .unwrap_or_else(|e| panic!("RUN after {after}: {e}"));
    let h = host_forward(&model, &c.input);
    assert!(
        r.output
            .iter()
            .zip(&h)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "run after {after}: output differs from the host"
    );
}

fn faults(dev: &mut Device, board: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let hello = dev.hello().expect("hello");
    let pool = hello.pool_bytes as usize;
    let c = small();
    let blob = c.blob.as_bytes().to_vec();
    let mut seq = 100u16;

    // 1. Corrupted payload (one bit of the blob flipped in transit): payload CRC.
    let mut f = device::encode(ty::UPLOAD, seq, &blob);
    f[device::HEADER + 100] ^= 0x10;
    dev.send_raw(&f).expect("send");
    seen.push(expect_error(
        dev,
        seq,
        code::PAYLOAD_CRC,
        "corrupted payload",
    ));
    still_works(dev, "a corrupted payload");

    // 2. Corrupted header (the length field): header CRC, unattributed; the rest of the frame
    //    is skipped while the device hunts for the next magic.
    seq += 1;
    let mut f = device::encode(ty::UPLOAD, seq, &blob);
    f[9] ^= 0x01;
    dev.send_raw(&f).expect("send");
    seen.push(expect_error(
        dev,
        SEQ_NONE,
        code::HEADER_CRC,
        "corrupted header",
    ));
    still_works(dev, "a corrupted header");

    // 3. Garbage without a magic: ignored.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 & 0x7f)
        .collect();
    dev.send_raw(&garbage).expect("send");
    still_works(dev, "4 KiB of garbage");

    // 4. Unknown frame type.
    seq += 1;
    dev.send_raw(&device::encode(0x42, seq, b"hi"))
        .expect("send");
    seen.push(expect_error(dev, seq, code::UNKNOWN_TYPE, "unknown type"));
    still_works(dev, "an unknown frame type");

    // 5. Oversized blob: refused from the header, before any payload byte is stored.
    seq += 1;
    dev.send_raw(&device::header(ty::UPLOAD, seq, pool + 1))
        .expect("send");
    let m = expect_error(dev, seq, code::TOO_LARGE, "oversized blob");
    assert!(
        m.contains("does not fit")
            && m.contains(&format!("{}", pool + 1))
            && m.contains(&pool.to_string()),
        "{m}"
    );
    seen.push(m);
    still_works(dev, "an oversized blob");

    // 5b. A blob that fits but whose run does not: the seed LDP(128, 128) at 64x64 int8
    //     (firmware/data/qemu-lm3s/) needs 2.25 MiB of scratch + 2 MiB of f32 input + 0.5 MiB
    //     of output: above the 3 MiB pool of the mps2 boards, within the 96 MiB of `virt`.
    let big = AlignedBytes::read_file(&root().join("firmware/data/qemu-lm3s/model.int8.ldp"))
        .expect("seed blob");
    let big_model = Model::parse(big.as_bytes()).expect("parse");
    let need = big.len().next_multiple_of(16)
        + big_model.scratch_bytes().next_multiple_of(16)
        + big_model.output_len() * 4
        + big_model.input_len() * 4;
    if need > pool {
        seq += 1;
        dev.send_raw(&device::encode(ty::UPLOAD, seq, big.as_bytes()))
            .expect("send");
        let m = expect_error(dev, seq, code::TOO_LARGE, "run does not fit");
        assert!(
            m.contains(&format!("needs {need} bytes")) && m.contains(&format!("have {pool}")),
            "{m}"
        );
        seen.push(m);
        still_works(dev, "a blob whose run does not fit");
    } else {
        let up = dev.upload(big.as_bytes()).expect("the seed LDP fits here");
        assert_eq!(up.ram_bytes as usize, need);
        seen.push(format!("seed LDP 64x64 int8 fits: {need} of {pool} bytes"));
    }

    // 6. A blob that fails validation (a byte of a weight changed, frame CRC correct): the
    //    device's Model::parse refuses it, and no model is left loaded.
    seq += 1;
    let mut bad = blob.clone();
    bad[200] ^= 0x55;
    dev.send_raw(&device::encode(ty::UPLOAD, seq, &bad))
        .expect("send");
    seen.push(expect_error(dev, seq, code::BAD_BLOB, "corrupted blob"));
    seq += 1;
    let x: Vec<u8> = c.input.iter().flat_map(|v| v.to_le_bytes()).collect();
    dev.send_raw(&device::encode(ty::RUN, seq, &x))
        .expect("send");
    seen.push(expect_error(
        dev,
        seq,
        code::NO_MODEL,
        "run without a model",
    ));
    still_works(dev, "an invalid blob");

    // 7. A dtype this firmware does not know (code 4, blob CRC recomputed): every board runs
    //    f32, f16 and int8, so "unsupported" is a dtype outside the format.
    seq += 1;
    let mut odd = blob.clone();
    odd[9] = 4;
    let n = odd.len();
    let crc = ldp_core::blob::crc::crc32(&odd[..n - 4]);
    odd[n - 4..].copy_from_slice(&crc.to_le_bytes());
    dev.send_raw(&device::encode(ty::UPLOAD, seq, &odd))
        .expect("send");
    let m = expect_error(dev, seq, code::BAD_BLOB, "unknown dtype");
    assert!(m.contains("dtype"), "{m}");
    seen.push(m);
    still_works(dev, "an unknown dtype");

    // 8. Input of the wrong length.
    seq += 1;
    dev.send_raw(&device::encode(ty::RUN, seq, &x[..x.len() - 4]))
        .expect("send");
    seen.push(expect_error(dev, seq, code::BAD_LENGTH, "short input"));
    still_works(dev, "a short input");

    // 9. The bytes stop mid-payload (same link): the device abandons the frame after its
    //    receive timeout with TRUNCATED (attributed: the header was good).
    seq += 1;
    let f = device::encode(ty::UPLOAD, seq, &blob);
    dev.send_raw(&f[..f.len() / 2]).expect("send");
    let m = expect_error(dev, seq, code::TRUNCATED, "truncated payload");
    assert!(
        m.contains(&format!("of {} payload bytes", blob.len())),
        "{m}"
    );
    seen.push(m);
    still_works(dev, "a truncated payload");

    // 9b. The link closed mid-transfer: half a blob, then the connection is dropped and a new
    //     one opened. Whatever the device says about the abandoned frame goes to the old
    //     link or comes back to HELLO (which retries); the next requests must work.
    seq += 1;
    let f = device::encode(ty::UPLOAD, seq, &blob);
    dev.send_raw(&f[..f.len() / 2]).expect("send");
    dev.reconnect().expect("reconnect");
    still_works(dev, "a link closed mid-transfer");
    seen.push("link closed mid-transfer: reconnected, HELLO/UPLOAD/RUN work".into());

    // 10. Truncated header (the bytes stop after the magic), same link.
    dev.send_raw(&device::header(ty::HELLO, 7, 0)[..9])
        .expect("send");
    let frame = dev
        .recv_frame(Duration::from_secs(60))
        .expect("the device reports the truncated header");
    let e = frame.error().expect("an ERROR frame");
    assert_eq!(e.code, code::TRUNCATED, "{}", e.message);
    seen.push(e.message);
    still_works(dev, "a truncated header");

    seen.into_iter()
        .map(|m| format!("{board} fault answered: {m}"))
        .collect()
}

fn check_board(board: &str) {
    let mut dev = Device::start_qemu(board, &elf(board)).expect("start QEMU");
    dev.reply_timeout = Duration::from_secs(120);
    let h = dev.hello().expect("hello");
    assert_eq!(h.version, device::VERSION);
    assert_eq!(h.get("board"), Some(board));
    println!("{board}: {} (pool {} bytes)", h.info, h.pool_bytes);
    for l in golden(&mut dev, board) {
        println!("{l}");
    }
    for l in faults(&mut dev, board) {
        println!("{l}");
    }
    // After every fault, the golden models once more, on the same device.
    golden(&mut dev, board);
}

fn run_board(board: &str) {
    if !boards().iter().any(|b| b == board) {
        println!("{board}: not in LDP_DEVICE_TEST_BOARDS, skipped");
        return;
    }
    check_board(board);
}

#[test]
#[ignore = "needs QEMU and the serve firmware: run by `cargo xtask test` (device step)"]
fn device_qemu_m4() {
    run_board("qemu-m4");
}

#[test]
#[ignore = "needs QEMU and the serve firmware: run by `cargo xtask test` (device step)"]
fn device_qemu_m3() {
    run_board("qemu-m3");
}

#[test]
#[ignore = "needs QEMU and the serve firmware: run by `cargo xtask test` (device step)"]
fn device_qemu_a53() {
    run_board("qemu-a53");
}

/// `ldp-quant run --device B --compare` on a batch of 4 (one upload), int8 and f32.
#[test]
#[ignore = "needs QEMU and the serve firmware: run by `cargo xtask test` (device step)"]
fn cli_run_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = root().join("firmware/data/default");
    let input = root().join("host-tests/golden/v2_32to64_h6/heldout.npy");
    for board in boards() {
        let serve = elf(&board);
        for dtype in ["int8", "f32"] {
            let model = data.join(format!("v2_32to64_h6.{dtype}.ldp"));
            let out = dir.path().join(format!("{board}-{dtype}.npy"));
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_ldp-quant"))
                .args(["run", "--device", &board, "--compare", "--model"])
                .arg(&model)
                .arg("--input")
                .arg(&input)
                .arg("-o")
                .arg(&out)
                .env("LDP_SERVE_ELF", &serve)
                .output()
                .expect("run ldp-quant");
            let stdout = String::from_utf8_lossy(&o.stdout);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success(),
                "{board} {dtype}: ldp-quant failed\n{stdout}\n{stderr}"
            );
            print!("{stdout}");
            assert!(stdout.contains("match the host run"), "{stdout}");
            assert_eq!(
                stdout.matches("uploaded ").count(),
                1,
                "one upload: {stdout}"
            );
            assert_eq!(stdout.matches("sample ").count(), 4, "{stdout}");
            assert!(stdout.contains("instructions (plugin)"), "{stdout}");
            // The written output equals the host's `ldp-quant run` bit for bit (int8) or
            // within the bound (f32).
            let host_out = dir.path().join(format!("{board}-{dtype}.host.npy"));
            let st = std::process::Command::new(env!("CARGO_BIN_EXE_ldp-quant"))
                .args(["run", "--model"])
                .arg(&model)
                .arg("--input")
                .arg(&input)
                .arg("-o")
                .arg(&host_out)
                .output()
                .expect("host run");
            assert!(st.status.success());
            let y = ldp_quant::npy::read_f32(&out).expect("device output");
            let r = ldp_quant::npy::read_f32(&host_out).expect("host output");
            assert_eq!(y.shape, r.shape);
            if dtype == "int8" {
                assert!(y
                    .data
                    .iter()
                    .zip(&r.data)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            } else {
                let m = ldp_quant::metrics::compare(&y.data, &r.data);
                assert!(m.rel_l2 <= 1e-6, "{board} f32: {:.3e}", m.rel_l2);
            }
        }
    }
}
