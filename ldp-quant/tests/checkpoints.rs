//! The checkpoint layouts MobileVLM users hold (issue 17), end to end through the `ldp-quant`
//! binary against PyTorch float64 references computed from the weights as stored
//! (`tools/golden/gen_checkpoints.py`, fixtures in `host-tests/golden/checkpoints/`):
//! `torch.save` archives (whole BF16 checkpoint, FP16 `mm_projector.bin`), a sharded model
//! directory with `config.json` and `pytorch_model.bin.index.json`, a safetensors index,
//! llama.cpp mmproj GGUF files; and the refusals: malicious pickles, unsupported projector
//! types, truncated and corrupted files.
//!
//! Run with `cargo test -p ldp-quant --test checkpoints -- --nocapture` to see the errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ldp_quant::import::pickle::tensor_table;
use ldp_quant::metrics::compare;
use ldp_quant::npy;

const BIN: &str = env!("CARGO_BIN_EXE_ldp-quant");

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-tests/golden")
}

fn ck() -> PathBuf {
    golden().join("checkpoints")
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn cmd(args: &[String]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("spawn ldp-quant")
}

fn ok(args: &[String]) -> String {
    let o = cmd(args);
    assert!(
        o.status.success(),
        "ldp-quant {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command must fail with one stderr line `error: …` containing every needle, no panic.
fn fails(args: &[String], needles: &[&str]) -> String {
    let o = cmd(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "ldp-quant {args:?} succeeded");
    assert!(!err.contains("panicked"), "panic: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line: {err:?}");
    assert!(lines[0].starts_with("error: "), "stderr: {err:?}");
    for n in needles {
        assert!(err.contains(n), "stderr {err:?} does not mention {n:?}");
    }
    println!("  {}\n    -> {}", args[2], lines[0]);
    err
}

fn convert_args(weights: &Path, extra: &[&str], dtype: &str, out: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec!["convert".into(), "--weights".into(), p(weights)];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend(["--dtype".into(), dtype.into(), "-o".into(), p(out)]);
    a
}

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

/// Converts `weights` in f32 and f16, runs the golden case's input, checks the bounds.
fn check(weights: &Path, extra: &[&str], case: &str, expected: &Path, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = golden().join(case).join("input.npy");
    for (dtype, bound) in [("f32", 1e-5), ("f16", 5e-3)] {
        let blob = dir.path().join(format!("{dtype}.ldp"));
        let stdout = ok(&convert_args(weights, extra, dtype, &blob));
        for n in needles {
            assert!(
                stdout.contains(n),
                "{}: stdout lacks {n:?}:\n{stdout}",
                weights.display()
            );
        }
        let y = dir.path().join(format!("{dtype}.npy"));
        ok(&[
            "run".into(),
            "--model".into(),
            p(&blob),
            "--input".into(),
            p(&input),
            "-o".into(),
            p(&y),
        ]);
        let e = rel_l2(&y, expected);
        let name = weights.file_name().unwrap().to_string_lossy();
        println!("  {name:<36} {dtype}: rel L2 {e:.3e} (bound {bound:e})");
        assert!(e <= bound, "{name} {dtype}: rel L2 {e:e} > {bound:e}");
    }
}

#[test]
fn torch_save_whole_bf16_checkpoint() {
    // Non-contiguous (transposed-storage) weight and a bias at a storage offset included.
    check(
        &ck().join("v1_whole_bf16.bin"),
        &["--grid", "1x1"],
        "v1_16to32_h1",
        &ck().join("v1_whole_bf16_expected.npy"),
        &[
            "torch.save zip archive",
            "mobilevlm-v1",
            "prefix `model.mm_projector.model.`",
            "stored BF16",
            "model.mm_projector.model.mlp.3.weight                   BF16  [32, 32]",
            "[32, 1, 3, 3]",
        ],
    );
}

#[test]
fn torch_save_fp16_mm_projector() {
    check(
        &ck().join("v1_mm_projector_fp16.bin"),
        &["--grid", "1x1"],
        "v1_16to32_h1",
        &ck().join("v1_mm_projector_fp16_expected.npy"),
        &["stored F16", "mb_block.2.block.1.fc1.weight"],
    );
}

#[test]
fn sharded_model_directory_and_its_index() {
    let d = ck().join("v2_sharded");
    let needles = [
        "pytorch_model-00002-of-00002.bin",
        "opened 1 of 2 shards",
        "mobilevlm-v2",
        "prefix `model.mm_projector.`",
        "model.mm_projector.peg.peg.0.weight  BF16  [16, 1, 3, 3]",
    ];
    let mut with_cfg = needles.to_vec();
    with_cfg.extend([
        "config.json mm_projector_type `ldpnetv2`",
        "mm_hidden_size 8, hidden_size 16",
    ]);
    let expected = ck().join("v2_bf16_expected.npy");
    check(
        &d,
        &["--grid", "13x13"],
        "v2_8to16_h13",
        &expected,
        &with_cfg,
    );
    check(
        &d.join("pytorch_model.bin.index.json"),
        &["--grid", "13x13"],
        "v2_8to16_h13",
        &expected,
        &needles,
    );
    // The directory's vision tower (patch14-336) implies 24x24; the tiny fixture's input is
    // 13x13 tokens, so without --grid the blob expects another input shape.
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&convert_args(&d, &[], "f32", &dir.path().join("m.ldp")));
    assert!(out.contains("grid 24x24"), "{out}");
}

#[test]
fn safetensors_index_opens_only_the_projector_shard() {
    let dir = tempfile::tempdir().unwrap();
    let src = ck().join("v2_whole_bf16.safetensors");
    std::fs::copy(&src, dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    // The other shard is not a valid file: it must not be opened.
    std::fs::write(
        dir.path().join("model-00001-of-00002.safetensors"),
        b"not opened",
    )
    .unwrap();
    let bytes = std::fs::read(&src).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut map = serde_json::Map::new();
    for n in st.names() {
        map.insert(n.to_string(), "model-00002-of-00002.safetensors".into());
    }
    map.insert(
        "model.layers.1.mlp.up_proj.weight".into(),
        "model-00001-of-00002.safetensors".into(),
    );
    // Compact, with a `{` at byte 8 like a safetensors header: still read as JSON.
    let index = serde_json::json!({"meta": {}, "metadata": {"total_size": 1}, "weight_map": map});
    let text = serde_json::to_string(&index).unwrap();
    assert_eq!(&text[..9], r#"{"meta":{"#);
    std::fs::write(dir.path().join("model.safetensors.index.json"), text).unwrap();
    check(
        &dir.path().join("model.safetensors.index.json"),
        &["--grid", "6x6"],
        "v2_32to64_h6",
        &ck().join("v2_whole_bf16_expected.npy"),
        &["opened 1 of 2 shards", "(safetensors)"],
    );
    // The same as a model directory without config.json.
    check(
        dir.path(),
        &["--grid", "6x6"],
        "v2_32to64_h6",
        &ck().join("v2_whole_bf16_expected.npy"),
        &["no config.json"],
    );
}

#[test]
fn gguf_mmproj_needs_no_grid_or_arch() {
    check(
        &ck().join("mmproj_v1_f16.gguf"),
        &[],
        "v1_16to32_h12",
        &ck().join("mmproj_v1_f16_expected.npy"),
        &[
            "GGUF v3",
            "projector type `ldp` (from clip.projector_type) → mobilevlm-v1",
            "token grid 12x12 from clip.vision.image_size 168 / clip.vision.patch_size 14",
            "mm.model.mb_block.1.block.0.0.weight    F16   [32, 3, 3]",
            "mm.model.mb_block.2.block.1.fc1.weight  F16   [8, 32]",
            "mm.model.mlp.1.bias                     F32   [32]",
        ],
    );
    check(
        &ck().join("mmproj_v2_f16.gguf"),
        &[],
        "v2_8to16_h13",
        &ck().join("v2_bf16_expected.npy"),
        &[
            "alignment 64",
            "`ldpv2`",
            "mobilevlm-v2",
            "mm.model.peg.0.weight  F16   [16, 3, 3]",
            "mm.model.mlp.0.weight  F16   [16, 8]",
        ],
    );
    // --grid and --arch, when given, must agree with the file.
    check(
        &ck().join("mmproj_v1_f16.gguf"),
        &["--grid", "12x12", "--arch", "mobilevlm-v1"],
        "v1_16to32_h12",
        &ck().join("mmproj_v1_f16_expected.npy"),
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("m.ldp");
    let g = ck().join("mmproj_v1_f16.gguf");
    fails(
        &convert_args(&g, &["--grid", "6x6"], "f32", &o),
        &["--grid 6x6", "12x12", "clip.vision.image_size 168"],
    );
    fails(
        &convert_args(&g, &["--arch", "mobilevlm-v2"], "f32", &o),
        &["--arch mobilevlm-v2", "`ldp`", "mobilevlm-v1"],
    );
    fails(
        &convert_args(&g, &["--prefix", "mm."], "f32", &o),
        &["--prefix", "GGUF"],
    );
}

#[test]
fn unsupported_projector_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("m.ldp");
    let supported = "supported: `ldp` (MobileVLM V1 → mobilevlm-v1), `ldpv2` (MobileVLM V2 → \
         mobilevlm-v2), `mlp` (LLaVA's mlp2x_gelu → mlp2x-gelu)";
    fails(
        &convert_args(&ck().join("mmproj_resampler.gguf"), &[], "f32", &o),
        &["projector type `resampler`", "not supported", supported],
    );
    // A model directory whose config names a projector we do not run.
    let d = dir.path().join("other");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("config.json"), r#"{"mm_projector_type": "qformer"}"#).unwrap();
    fails(
        &convert_args(&d, &["--grid", "6x6"], "f32", &o),
        &[
            "`qformer`",
            "not supported",
            "`ldpnet`",
            "`ldpnetv2`",
            "`mlp2x_gelu`",
        ],
    );
}

/// LLaVA's `mlp2x_gelu` projector from llama.cpp's mmproj (projector type `mlp`, tensors
/// `mm.0.*`/`mm.2.*`) and from a LLaVA model directory (`config.json` `mm_projector_type`
/// `mlp2x_gelu`, keys `model.mm_projector.0.*`/`2.*`), against PyTorch.
#[test]
fn mlp2x_gelu_from_gguf_and_model_directory() {
    check(
        &ck().join("mmproj_mlp.gguf"),
        &[],
        "mlp_32to64_h6",
        &ck().join("mmproj_mlp_expected.npy"),
        &[
            "projector type `mlp` (from clip.projector_type) → mlp2x-gelu",
            "token grid 6x6 from clip.vision.image_size 84 / clip.vision.patch_size 14",
            "mm.0.weight  F16   [64, 32]",
            "mm.2.bias    F32   [64]",
        ],
    );
    // A LLaVA-style directory: config.json plus the projector under `model.mm_projector.` next
    // to unrelated language-model keys, written as safetensors.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("llava");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(
        d.join("config.json"),
        r#"{"mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 32, "hidden_size": 64,
            "mm_vision_tower": "openai/clip-vit-large-patch14-336"}"#,
    )
    .unwrap();
    let src = std::fs::read(golden().join("mlp_32to64_h6").join("weights.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&src).unwrap();
    let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| (format!("model.mm_projector.{k}"), v))
        .collect();
    let lm = vec![0u8; 4 * 8 * 4];
    views.push((
        "model.layers.0.mlp.down_proj.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![8, 4], &lm).unwrap(),
    ));
    safetensors::serialize_to_file(views, None, &d.join("model.safetensors")).unwrap();
    // The tower's 336/14 = 24x24 grid is the config's; this case is 6x6, so --grid overrides it
    // only where the config allows (a model directory's grid is a default, not a fact).
    check(
        &d,
        &["--grid", "6x6"],
        "mlp_32to64_h6",
        &golden().join("mlp_32to64_h6").join("expected.npy"),
        &[
            "mm_projector_type `mlp2x_gelu` → mlp2x-gelu",
            "model.mm_projector.",
        ],
    );
}

#[test]
fn malicious_pickles_are_refused_without_running() {
    let marker = Path::new("/tmp/ldp_quant_pwned");
    let before = marker.exists();
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("m.ldp");
    for f in ["malicious_system.bin", "malicious_p4.bin"] {
        fails(
            &convert_args(&ck().join(f), &["--grid", "6x6"], "f32", &o),
            &[
                "refusing pickle global `posix.system`",
                "nothing was executed",
            ],
        );
    }
    assert_eq!(marker.exists(), before, "the payload must not run");
    assert!(!o.exists());
}

/// A pickle program from opcodes (protocol 2 framing).
fn pkl(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 2];
    v.extend_from_slice(body);
    v.push(b'.');
    v
}

#[test]
fn restricted_unpickler_refuses_everything_else() {
    let err = |b: &[u8]| format!("{:#}", tensor_table(b).unwrap_err());
    // Globals outside the whitelist, by GLOBAL and by STACK_GLOBAL.
    let e = err(&pkl(b"cbuiltins\neval\n)R"));
    assert!(e.contains("`builtins.eval`"), "{e}");
    let e = err(&pkl(b"\x8c\x02os\x8c\x06system\x93"));
    assert!(e.contains("`os.system`"), "{e}");
    let e = err(&pkl(b"ctorch\nload\n"));
    assert!(e.contains("`torch.load`"), "{e}");
    // REDUCE of a whitelisted name that is not a function.
    let e = err(&pkl(b"ctorch\nFloatStorage\n)R"));
    assert!(e.contains("refusing REDUCE of `torch.FloatStorage`"), "{e}");
    // REDUCE of something that is not a global.
    let e = err(&pkl(b"X\x01\x00\x00\x00a)R"));
    assert!(e.contains("refusing REDUCE of a str"), "{e}");
    // Object-building opcodes.
    for (op, name) in [
        (b'i', "INST"),
        (b'o', "OBJ"),
        (0x81, "NEWOBJ"),
        (0x82, "EXT"),
    ] {
        let e = err(&pkl(&[b'(', op]));
        assert!(
            e.contains(name) && e.contains("refusing pickle opcode"),
            "{e}"
        );
    }
    // BUILD on anything but a dict (e.g. setting state on a storage type).
    let e = err(&pkl(b"ctorch\nFloatStorage\n}b"));
    assert!(e.contains("refusing BUILD on a global"), "{e}");
    // Malformed programs: errors, never panics.
    for bad in [
        &b""[..],
        b"\x80",
        b"\x80\x02",
        b"\x80\x02t.",
        b"\x80\x02s.",
        b"\x80\x02h\x07.",
        b"\x80\x02X\xff\xff\xff\xff",
        b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x02}K\x01s.",
        b"\x80\x09}.",
        b"\x80\x02K\x01.",
    ] {
        assert!(tensor_table(bad).is_err(), "{bad:?}");
    }
    // Memo references are shared, not copied: 2^40 nominal elements stay cheap.
    let mut body = b"K\x00q\x00".to_vec();
    for _ in 0..40 {
        body.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    body.extend_from_slice(b"0}");
    assert!(tensor_table(&pkl(&body)).unwrap().is_empty());
    // The number of operations is bounded.
    let many: Vec<u8> = [0x80u8, 2].repeat((1 << 23) + 1);
    let e = err(&pkl(&many));
    assert!(e.contains("more than 8388608 operations"), "{e}");
}

/// data.pkl of a torch.save archive (the first central-directory entry, stored; torch.save's
/// local headers defer the sizes to a data descriptor, so they come from the central directory).
fn data_pkl(archive: &[u8]) -> Vec<u8> {
    let u16_at = |i: usize| u16::from_le_bytes([archive[i], archive[i + 1]]) as usize;
    let u32_at = |i: usize| {
        u32::from_le_bytes([archive[i], archive[i + 1], archive[i + 2], archive[i + 3]]) as usize
    };
    let cd = archive.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let (size, name_len, local) = (u32_at(cd + 20), u16_at(cd + 28), u32_at(cd + 42));
    let name = std::str::from_utf8(&archive[cd + 46..cd + 46 + name_len]).unwrap();
    assert!(name.ends_with("/data.pkl"), "{name}");
    let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
    archive[start..start + size].to_vec()
}

#[test]
fn real_data_pkl_and_every_truncation_of_it() {
    let archive = std::fs::read(ck().join("v1_whole_bf16.bin")).unwrap();
    let pkl = data_pkl(&archive);
    let t = tensor_table(&pkl).unwrap();
    assert_eq!(t.len(), 29, "24 projector + 5 unrelated tensors");
    let w = &t["model.mm_projector.model.mlp.3.weight"];
    assert_eq!(w.shape, vec![32, 32]);
    assert_eq!(w.stride, vec![1, 32], "stored transposed");
    let b = &t["model.mm_projector.model.mlp.3.bias"];
    assert_eq!(
        (b.offset, b.storage.numel),
        (32, 64),
        "second half of a shared storage"
    );
    assert_eq!(b.storage, t["model.mm_projector.model.mlp.1.bias"].storage);
    for n in 0..pkl.len() {
        assert!(
            tensor_table(&pkl[..n]).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
}

#[test]
fn corrupt_and_truncated_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("m.ldp");
    let g = ["--grid", "6x6"];
    let conv = |f: &Path, extra: &[&str]| convert_args(f, extra, "f32", &o);
    fails(
        &conv(&ck().join("corrupt_truncated.bin"), &g),
        &["end-of-central-directory record not found", "truncated"],
    );
    fails(
        &conv(&ck().join("corrupt_pickle_crc.bin"), &g),
        &["data.pkl", "CRC mismatch"],
    );
    fails(
        &conv(&ck().join("corrupt_truncated.gguf"), &[]),
        &["GGUF", "past the end of the file"],
    );
    fails(
        &conv(&ck().join("corrupt_count.gguf"), &[]),
        &["1099511627776 tensors", "corrupted"],
    );
    // Legacy (non-zip) torch.save, and files that are nothing we know.
    let legacy = dir.path().join("legacy.pt");
    std::fs::write(&legacy, pkl(b"}")).unwrap();
    fails(&conv(&legacy, &g), &["legacy", "not supported"]);
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"hello, this is not a checkpoint").unwrap();
    fails(
        &conv(&junk, &g),
        &["unrecognised weights format", "not a zip archive"],
    );
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    fails(&conv(&empty, &[]), &["unrecognised weights format", "GGUF"]);

    // Every region of each good file cut off: an error naming the file, never a panic or a model.
    let cases: [(&str, &[&str]); 4] = [
        ("v1_whole_bf16.bin", &["--grid", "1x1"]),
        ("mmproj_v1_f16.gguf", &[]),
        ("mmproj_v2_f16.gguf", &[]),
        ("v2_whole_bf16.safetensors", &["--grid", "6x6"]),
    ];
    for (f, extra) in cases {
        let bytes = std::fs::read(ck().join(f)).unwrap();
        let len = bytes.len();
        let mut cuts = vec![1, 8, 20, 100, len / 4, len / 2, len * 3 / 4, len - 64];
        if !f.ends_with(".gguf") {
            cuts.push(len - 1); // (a GGUF file may end in alignment padding)
        }
        for cut in cuts {
            let t = dir.path().join(format!("cut_{cut}_{f}"));
            std::fs::write(&t, &bytes[..cut]).unwrap();
            let e = fails(&conv(&t, extra), &[]);
            assert!(e.contains(&format!("cut_{cut}_")), "names the file: {e}");
        }
    }
    // A GGUF tensor offset pointing past the end: the data section is bounded.
    let bytes = std::fs::read(ck().join("mmproj_v2_f16.gguf")).unwrap();
    let t = dir.path().join("short_data.gguf");
    std::fs::write(&t, &bytes[..bytes.len() - 600]).unwrap();
    fails(
        &conv(&t, &[]),
        &["short_data.gguf", "runs past the end of the file"],
    );
    // A storage whose bytes were cut from inside a torch.save archive (EOCD intact): the
    // central directory's ranges are checked against the file.
    let bytes = std::fs::read(ck().join("v1_mm_projector_fp16.bin")).unwrap();
    let mut cut = bytes[..bytes.len() / 2].to_vec();
    let eocd = bytes.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    cut.extend_from_slice(&bytes[eocd..]);
    let t = dir.path().join("hole.bin");
    std::fs::write(&t, &cut).unwrap();
    fails(&conv(&t, &["--grid", "1x1"]), &["hole.bin"]);
}

#[test]
fn directory_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("m.ldp");
    let d = dir.path().join("empty_model");
    std::fs::create_dir(&d).unwrap();
    fails(
        &convert_args(&d, &["--grid", "6x6"], "f32", &o),
        &[
            "no weights found",
            "pytorch_model.bin.index.json",
            "model.safetensors",
        ],
    );
    // config.json sizes must match the weights.
    let src = ck().join("v2_sharded");
    let d = dir.path().join("wrong_size");
    std::fs::create_dir(&d).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, d.join(f.file_name().unwrap())).unwrap();
    }
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"hidden_size\": 16", "\"hidden_size\": 2048"),
    )
    .unwrap();
    fails(
        &convert_args(&d, &["--grid", "13x13"], "f32", &o),
        &["hidden_size is 2048", "16 output channels"],
    );
    // --arch must agree with config.json.
    fails(
        &convert_args(
            &src,
            &["--grid", "13x13", "--arch", "mobilevlm-v1"],
            "f32",
            &o,
        ),
        &["--arch mobilevlm-v1", "`ldpnetv2`"],
    );
    // A shard the index names is missing.
    std::fs::remove_file(d.join("pytorch_model-00002-of-00002.bin")).unwrap();
    std::fs::write(d.join("config.json"), &cfg).unwrap();
    fails(
        &convert_args(&d, &["--grid", "13x13"], "f32", &o),
        &["pytorch_model-00002-of-00002.bin", "cannot read"],
    );
}

/// A checkpoint far larger than memory is fine as long as the projector is small: only the
/// header and the projector's byte ranges are read (a sparse 64 GiB file, read whole, would
/// take minutes and exhaust memory).
#[test]
fn huge_checkpoint_is_streamed() {
    let src = std::fs::read(ck().join("v2_whole_bf16.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&src).unwrap();
    let big: u64 = 64 << 30;
    let mut header = serde_json::Map::new();
    header.insert(
        "model.layers.0.mlp.gate_proj.weight".into(),
        serde_json::json!({"dtype": "BF16", "shape": [big / 2], "data_offsets": [0, big]}),
    );
    let mut tail = Vec::new();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for n in &names {
        let v = st.tensor(n).unwrap();
        let s = big + tail.len() as u64;
        tail.extend_from_slice(v.data());
        header.insert(
            n.clone(),
            serde_json::json!({"dtype": v.dtype().to_string(), "shape": v.shape(),
                               "data_offsets": [s, big + tail.len() as u64]}),
        );
    }
    let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&(h.len() as u64).to_le_bytes()).unwrap();
        f.write_all(&h).unwrap();
        let data_start = 8 + h.len() as u64;
        f.set_len(data_start + big).unwrap(); // sparse: no blocks written
        f.seek(SeekFrom::Start(data_start + big)).unwrap();
        f.write_all(&tail).unwrap();
    }
    let t = std::time::Instant::now();
    check(
        &path,
        &["--grid", "6x6"],
        "v2_32to64_h6",
        &ck().join("v2_whole_bf16_expected.npy"),
        &["prefix `model.mm_projector.`"],
    );
    let secs = t.elapsed().as_secs_f64();
    println!("  64 GiB (sparse) checkpoint: two converts and runs in {secs:.2} s");
    assert!(secs < 60.0, "{secs} s: the file was read whole?");
}

/// (name, data, crc) of every entry of a stored zip archive, from its central directory.
fn zip_entries(a: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, u32)> {
    let u16_at = |i: usize| u16::from_le_bytes([a[i], a[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    let eocd = a.windows(4).rposition(|w| w == b"PK\x05\x06").unwrap();
    let (n, mut i) = (u16_at(eocd + 10), u32_at(eocd + 16) as usize);
    let mut out = Vec::new();
    for _ in 0..n {
        assert_eq!(&a[i..i + 4], b"PK\x01\x02");
        let (crc, size) = (u32_at(i + 16), u32_at(i + 20) as usize);
        let (nl, el, cl) = (u16_at(i + 28), u16_at(i + 30), u16_at(i + 32));
        let local = u32_at(i + 42) as usize;
        let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        out.push((
            a[i + 46..i + 46 + nl].to_vec(),
            a[start..start + size].to_vec(),
            crc,
        ));
        i += 46 + nl + el + cl;
    }
    out
}

/// The same entries as a ZIP64 archive in which every size and offset is in the ZIP64 fields
/// (the layout of a torch.save checkpoint over 4 GiB).
fn zip64(entries: &[(Vec<u8>, Vec<u8>, u32)]) -> Vec<u8> {
    let mut z = Vec::new();
    let mut cd = Vec::new();
    for (name, data, crc) in entries {
        let off = z.len() as u64;
        let mut extra = Vec::new();
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&16u16.to_le_bytes());
        extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
        extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
        z.extend_from_slice(b"PK\x03\x04");
        z.extend_from_slice(&[45, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method 0, time, date
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&[0xFF; 8]);
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        z.extend_from_slice(name);
        z.extend_from_slice(&extra);
        z.extend_from_slice(data);
        let mut cextra = extra.clone();
        cextra[2..4].copy_from_slice(&24u16.to_le_bytes());
        cextra.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(b"PK\x01\x02");
        cd.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        cd.extend_from_slice(&crc.to_le_bytes());
        cd.extend_from_slice(&[0xFF; 8]);
        cd.extend_from_slice(&(name.len() as u16).to_le_bytes());
        cd.extend_from_slice(&(cextra.len() as u16).to_le_bytes());
        cd.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        cd.extend_from_slice(&[0; 4]); // external attributes
        cd.extend_from_slice(&[0xFF; 4]);
        cd.extend_from_slice(name);
        cd.extend_from_slice(&cextra);
    }
    let cd_off = z.len() as u64;
    z.extend_from_slice(&cd);
    let rec = z.len() as u64;
    z.extend_from_slice(b"PK\x06\x06");
    z.extend_from_slice(&44u64.to_le_bytes());
    z.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    z.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    z.extend_from_slice(&(cd.len() as u64).to_le_bytes());
    z.extend_from_slice(&cd_off.to_le_bytes());
    z.extend_from_slice(b"PK\x06\x07");
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(&rec.to_le_bytes());
    z.extend_from_slice(&1u32.to_le_bytes());
    z.extend_from_slice(b"PK\x05\x06");
    z.extend_from_slice(&[0; 4]);
    z.extend_from_slice(&[0xFF; 4]);
    z.extend_from_slice(&[0xFF; 8]);
    z.extend_from_slice(&[0; 2]);
    z
}

#[test]
fn zip64_torch_save_archive() {
    let src = std::fs::read(ck().join("v1_mm_projector_fp16.bin")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zip64.bin");
    std::fs::write(&path, zip64(&zip_entries(&src))).unwrap();
    check(
        &path,
        &["--grid", "1x1"],
        "v1_16to32_h1",
        &ck().join("v1_mm_projector_fp16_expected.npy"),
        &["stored F16"],
    );
}

/// `--dtype int8 --calib` from a GGUF file and a model directory, held to the project's int8
/// bound for normal inputs on grids of at least 64 positions (0.04, host-tests/tests/int8.rs).
#[test]
fn int8_from_gguf_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        (
            ck().join("mmproj_v1_f16.gguf"),
            vec![],
            "v1_16to32_h12",
            "mmproj_v1_f16_expected.npy",
        ),
        (
            ck().join("mmproj_v2_f16.gguf"),
            vec![],
            "v2_8to16_h13",
            "v2_bf16_expected.npy",
        ),
        (
            ck().join("v2_sharded"),
            vec!["--grid", "13x13"],
            "v2_8to16_h13",
            "v2_bf16_expected.npy",
        ),
        (
            ck().join("mmproj_mlp.gguf"),
            vec![],
            "mlp_32to64_h6",
            "mmproj_mlp_expected.npy",
        ),
    ];
    for (w, extra, case, expected) in rows {
        let calib = golden().join(case).join("calib.npy");
        let mut extra: Vec<&str> = extra;
        let c = p(&calib);
        extra.extend(["--calib", c.as_str()]);
        let blob = dir.path().join("int8.ldp");
        ok(&convert_args(&w, &extra, "int8", &blob));
        let y = dir.path().join("int8.npy");
        ok(&[
            "run".into(),
            "--model".into(),
            p(&blob),
            "--input".into(),
            p(&golden().join(case).join("input.npy")),
            "-o".into(),
            p(&y),
        ]);
        let e = rel_l2(&y, &ck().join(expected));
        println!(
            "  {:<24} int8: rel L2 {e:.4} (bound 0.04)",
            w.file_name().unwrap().to_string_lossy()
        );
        assert!(e <= 0.04, "{}: {e}", w.display());
    }
}
