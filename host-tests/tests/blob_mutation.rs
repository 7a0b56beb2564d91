//! Mutation tests of the blob reader: valid blobs of every architecture and float dtype, written
//! by `ldp-quant`'s writer, are truncated, bit-flipped and made to lie (with the CRC recomputed so
//! that the checks behind the CRC are reached). `Model::parse` must reject every one of them with
//! an error — never panic — and where the mutation determines the error, with that variant.
//! A flipped data byte with a recomputed CRC is a valid blob: it must parse and run without
//! panicking.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ldp_core::arch::ldp::LdpConfig;
use ldp_core::arch::mobilevlm_v1::V1Config;
use ldp_core::arch::mobilevlm_v2::V2Config;
use ldp_core::blob::crc::crc32;
use ldp_core::blob::format::{ENTRY_LEN, HEADER_LEN};
use ldp_core::{BlobError, DType, Model, ModelConfig};
use ldp_quant::calib::CalibSet;
use ldp_quant::int8::InputQuant;
use ldp_quant::quantize::{self, Activations, CalibMethod, Int8Options};
use ldp_quant::{write, AlignedBytes, FloatModel};

/// Small configurations covering every architecture and its branches.
fn configs() -> Vec<(&'static str, ModelConfig)> {
    vec![
        (
            "ldp 4->6 5x3",
            ModelConfig::Ldp(LdpConfig {
                c_in: 4,
                c_out: 6,
                h: 5,
                w: 3,
            }),
        ),
        (
            "ldp 4->4 4x4",
            ModelConfig::Ldp(LdpConfig {
                c_in: 4,
                c_out: 4,
                h: 4,
                w: 4,
            }),
        ),
        (
            "v1 8->16 h3",
            ModelConfig::MobileVlmV1(V1Config::new(8, 16, 3)),
        ),
        (
            "v2 4->8 h5",
            ModelConfig::MobileVlmV2(V2Config {
                c_in: 4,
                c_out: 8,
                h: 5,
            }),
        ),
        (
            "mlp2x-gelu 4->8 3x5",
            ModelConfig::Graph(ldp_core::graph::GraphConfig {
                arch: ldp_core::Arch::Mlp2xGelu,
                c_in: 4,
                c_out: 8,
                h: 3,
                w: 5,
            }),
        ),
    ]
}

struct Blob {
    name: String,
    bytes: Vec<u8>,
    n_tensors: usize,
    /// int8 blobs carry quantization parameters that the reader range-checks, so a mutated data
    /// byte may be rejected (but never panic); float blobs accept any data.
    int8: bool,
}

/// Deterministic calibration inputs for `cfg`.
fn calib(cfg: ModelConfig, seed: u64) -> CalibSet {
    let mut s = seed | 1;
    let samples = (0..4)
        .map(|_| {
            (0..cfg.input_len())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect()
        })
        .collect();
    CalibSet {
        config: cfg,
        samples,
    }
}

fn blobs() -> Vec<Blob> {
    let mut out = Vec::new();
    for (i, (name, cfg)) in configs().into_iter().enumerate() {
        let model = FloatModel::synthetic(cfg, 7 + i as u64);
        for dtype in [DType::F32, DType::F16] {
            let bytes = write::float_blob(&model, dtype).expect("writer");
            out.push(Blob {
                name: format!("{name} {}", dtype.name()),
                bytes,
                n_tensors: model.specs().len(),
                int8: false,
            });
        }
        let cal = calib(cfg, 99 + i as u64);
        let v2 = matches!(cfg, ModelConfig::MobileVlmV2(_));
        let v1 = matches!(cfg, ModelConfig::MobileVlmV1(_));
        // Graph architectures (mlp2x-gelu) have a per-tensor int8 or a 16-bit input, or 16-bit
        // activations.
        let graph = matches!(cfg, ModelConfig::Graph(_));
        let variants = [(InputQuant::PerTensor, Activations::Auto, "per-tensor")]
            .into_iter()
            .chain((!graph).then_some((InputQuant::PerChannel, Activations::Auto, "per-channel")))
            .chain((v2 || graph).then_some((
                InputQuant::PerTensor,
                Activations::Int16,
                "16-bit activations",
            )))
            .chain((!v2).then_some((InputQuant::Int16, Activations::Auto, "16-bit input")))
            // MobileVLM V1's default is 16-bit activations: its int8 activations explicitly.
            .chain(v1.then_some((InputQuant::PerTensor, Activations::Int8, "int8 activations")));
        for (iq, activations, tag) in variants {
            let opts = Int8Options {
                calib_method: CalibMethod::Minmax,
                input_quant: iq,
                activations,
                ..Int8Options::default()
            };
            let bytes = quantize::int8(&model, Some(&cal), &opts).expect("int8 quantizer");
            let buf = AlignedBytes::from_slice(&bytes);
            let n_tensors = Model::parse(buf.as_bytes())
                .expect("int8 blob parses")
                .tensor_count();
            out.push(Blob {
                name: format!("{name} int8 {tag}"),
                bytes,
                n_tensors,
                int8: true,
            });
        }
    }
    out
}

fn rd_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn wr_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Recomputes the CRC trailer.
fn fix_crc(b: &mut [u8]) {
    let n = b.len() - 4;
    let c = crc32(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
}

/// Parses `bytes` (copied to an aligned buffer) and, if valid, runs a forward pass on a zero
/// input and on a ramp. Any panic fails the test, naming the mutation.
fn check(bytes: &[u8], what: &str) -> Result<(), BlobError> {
    let buf = AlignedBytes::from_slice(bytes);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let m = Model::parse(buf.as_bytes())?;
        let mut scratch = AlignedBytes::zeroed(m.scratch_bytes());
        let mut y = vec![0.0f32; m.output_len()];
        let x0 = vec![0.0f32; m.input_len()];
        let x1: Vec<f32> = (0..m.input_len())
            .map(|i| (i % 13) as f32 * 0.25 - 1.5)
            .collect();
        for x in [&x0, &x1] {
            // A blob whose weights were corrupted may compute garbage (or refuse), but must not panic.
            let _ = m.forward(x, &mut y, scratch.as_mut_bytes());
        }
        Ok(())
    }));
    match r {
        Ok(r) => r,
        Err(_) => panic!("ldp-core panicked on: {what}"),
    }
}

fn expect_err(bytes: &[u8], what: &str) -> BlobError {
    match check(bytes, what) {
        Err(e) => e,
        Ok(()) => panic!("accepted a corrupted blob: {what}"),
    }
}

#[test]
fn valid_blobs_parse_and_run() {
    for b in blobs() {
        check(&b.bytes, &b.name).unwrap_or_else(|e| panic!("{}: {e}", b.name));
        let buf = AlignedBytes::from_slice(&b.bytes);
        let m = Model::parse(buf.as_bytes()).unwrap();
        assert_eq!(m.tensor_count(), b.n_tensors);
        println!("{:<16} {:>6} bytes", b.name, b.bytes.len());
    }
}

#[test]
fn every_truncation_is_rejected() {
    for b in blobs() {
        for len in 0..b.bytes.len() {
            let what = format!("{} truncated to {len}", b.name);
            let e = expect_err(&b.bytes[..len], &what);
            if len < HEADER_LEN + 4 {
                assert!(matches!(e, BlobError::Truncated { .. }), "{what}: {e:?}");
            } else {
                assert!(
                    matches!(e, BlobError::LengthMismatch { header, actual } if header == b.bytes.len() && actual == len),
                    "{what}: {e:?}"
                );
            }
        }
        // Appended bytes are rejected too.
        let mut long = b.bytes.clone();
        long.extend_from_slice(&[0u8; 16]);
        let e = expect_err(&long, &format!("{} padded", b.name));
        assert!(matches!(e, BlobError::LengthMismatch { .. }), "{e:?}");
    }
}

#[test]
fn every_byte_flip_is_rejected() {
    for b in blobs() {
        for i in 0..b.bytes.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut m = b.bytes.clone();
                m[i] ^= mask;
                let what = format!("{}: byte {i} ^= {mask:#04x}", b.name);
                let e = expect_err(&m, &what);
                let ok = match i {
                    0..=3 => matches!(e, BlobError::BadMagic),
                    4..=5 => matches!(e, BlobError::UnsupportedVersion { .. }),
                    6..=7 => matches!(e, BlobError::BadHeader(_)),
                    // An arch or dtype byte may flip to another valid value: then the CRC catches it.
                    8..=9 => matches!(e, BlobError::BadHeader(_) | BlobError::BadCrc { .. }),
                    44..=47 => matches!(e, BlobError::LengthMismatch { .. }),
                    48..=63 => matches!(e, BlobError::BadHeader(_)),
                    _ => matches!(e, BlobError::BadCrc { .. }),
                };
                assert!(ok, "{what}: unexpected {e:?}");
            }
        }
    }
}

/// Each u32 header field (offset, name) from 12 to 44.
const FIELDS: [(usize, &str); 8] = [
    (12, "c_in"),
    (16, "c_out"),
    (20, "h"),
    (24, "w"),
    (28, "squeeze"),
    (32, "n_tensors"),
    (36, "table_offset"),
    (40, "data_offset"),
];

#[test]
fn header_lies_with_valid_crc_are_rejected() {
    for b in blobs() {
        let orig = &b.bytes;
        for (at, field) in FIELDS {
            let cur = rd_u32(orig, at);
            let mut values = vec![
                0u32,
                1,
                2,
                cur.wrapping_add(1),
                cur.wrapping_sub(1),
                cur.wrapping_mul(2),
                1 << 16,
                (1 << 16) + 1,
                1 << 20,
                0x7FFF_FFFF,
                u32::MAX,
            ];
            values.retain(|&v| v != cur);
            for v in values {
                let mut m = orig.clone();
                wr_u32(&mut m, at, v);
                fix_crc(&mut m);
                let what = format!("{}: header {field} = {v} (was {cur})", b.name);
                // The grid of an `ldp` or `mlp2x-gelu` blob is free (its weights do not depend
                // on it): any side up to 65536 (with these channel counts) is a valid model and
                // must run.
                let grid_only = (field == "h" || field == "w")
                    && (b.name.starts_with("ldp") || b.name.starts_with("mlp2x-gelu"));
                if grid_only && v > 0 && v <= 1 << 16 {
                    let r = check(&m, &what);
                    // An int8 blob's parameters may be tied to its grid; a float blob's are not.
                    assert!(b.int8 || r.is_ok(), "{what}: {r:?}");
                    continue;
                }
                let e = expect_err(&m, &what);
                let ok = match field {
                    "n_tensors" => matches!(e, BlobError::BadTable(_)),
                    _ if b.int8 && !matches!(field, "table_offset" | "data_offset") => matches!(
                        e,
                        BlobError::BadHeader(_)
                            | BlobError::BadTable(_)
                            | BlobError::ShapeMismatch { .. }
                    ),
                    "table_offset" | "data_offset" => matches!(e, BlobError::BadHeader(_)),
                    "c_in" if v == 0 || v > 1 << 16 => matches!(e, BlobError::BadHeader(_)),
                    "c_in" => matches!(
                        e,
                        BlobError::ShapeMismatch { index: 0 } | BlobError::BadHeader(_)
                    ),
                    "c_out" => {
                        matches!(e, BlobError::ShapeMismatch { .. } | BlobError::BadHeader(_))
                    }
                    "squeeze" => {
                        matches!(e, BlobError::ShapeMismatch { .. } | BlobError::BadHeader(_))
                    }
                    "h" | "w" => matches!(e, BlobError::BadHeader(_)),
                    _ => false,
                };
                assert!(ok, "{what}: unexpected {e:?}");
            }
        }
        // The u16 fields and the enum bytes, with the CRC recomputed.
        // Versions 1 and 2 (32- and 16-byte table entries, Q15 SE gate tables), 3 (int8
        // LayerNorm inputs), 4 (i32 biases, i16 multipliers) and a future 6.
        for found in [1u16, 2, 3, 4, 6] {
            let mut m = orig.clone();
            m[4..6].copy_from_slice(&found.to_le_bytes());
            fix_crc(&mut m);
            let e = expect_err(&m, &format!("version {found}"));
            assert!(
                matches!(
                    e,
                    BlobError::UnsupportedVersion { found: f, supported: 5 } if f == found
                ),
                "{e:?}"
            );
        }
        let mut m = orig.clone();
        m[6..8].copy_from_slice(&32u16.to_le_bytes());
        fix_crc(&mut m);
        assert!(matches!(
            expect_err(&m, "header length 32"),
            BlobError::BadHeader(_)
        ));
        let cur_flags = u16::from_le_bytes([orig[10], orig[11]]);
        for flags in [0u16, 1, 2, 3, 4, 5, 6, 0x8000, u16::MAX] {
            if flags == cur_flags {
                continue;
            }
            let mut m = orig.clone();
            m[10..12].copy_from_slice(&flags.to_le_bytes());
            fix_crc(&mut m);
            let what = format!("{}: flags {flags:#x}", b.name);
            let e = expect_err(&m, &what);
            // Bit 1 (16-bit activations) exists for int8 MobileVLM V1 and V2 blobs (arch 2, 3)
            // and graph architectures (arch 4, mlp2x-gelu), bit 2 (16-bit input) for the non-V2
            // int8 blobs, alone; graph architectures have only bits 1 and 2, one at a time.
            let v2 = orig[8] == 3;
            let v1 = orig[8] == 2;
            let graph = orig[8] == 4;
            let valid = if graph {
                flags == 0 || flags == 2 || flags == 4
            } else {
                flags <= 1 || ((v1 || v2) && flags == 2) || (!v2 && flags == 4)
            };
            if b.int8 && valid {
                // Toggling the per-channel-input, 16-bit-activation or 16-bit-input bit
                // changes the expected tensor list and parameter shapes.
                assert!(
                    matches!(e, BlobError::ShapeMismatch { .. } | BlobError::BadTable(_)),
                    "{what}: {e:?}"
                );
            } else {
                assert!(matches!(e, BlobError::BadHeader(_)), "{what}: {e:?}");
            }
        }
        for arch in 0u8..=255 {
            if arch == orig[8] {
                continue;
            }
            let mut m = orig.clone();
            m[8] = arch;
            fix_crc(&mut m);
            let what = format!("{}: arch byte {arch}", b.name);
            let e = expect_err(&m, &what);
            assert!(
                matches!(
                    e,
                    BlobError::BadHeader(_)
                        | BlobError::BadTable(_)
                        | BlobError::ShapeMismatch { .. }
                ),
                "{what}: {e:?}"
            );
        }
        for dtype in 0u8..=255 {
            if dtype == orig[9] {
                continue;
            }
            let mut m = orig.clone();
            m[9] = dtype;
            fix_crc(&mut m);
            let what = format!("{}: dtype byte {dtype}", b.name);
            let e = expect_err(&m, &what);
            assert!(
                matches!(e, BlobError::BadHeader(_) | BlobError::BadTable(_)),
                "{what}: {e:?}"
            );
        }
    }
}

#[test]
fn table_lies_with_valid_crc_are_rejected() {
    for b in blobs() {
        let orig = &b.bytes;
        let n = b.n_tensors;
        let ent = |i: usize| HEADER_LEN + ENTRY_LEN * i;
        for i in 0..n {
            let e0 = ent(i);
            let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
                let mut m = orig.clone();
                f(&mut m);
                fix_crc(&mut m);
                m
            };
            let what = |s: &str| format!("{}: entry {i} {s}", b.name);
            let idx = i as u16;

            // index
            for v in [i as u16 + 1, i.wrapping_sub(1) as u16, u16::MAX] {
                let m = mutate(&|m| m[e0..e0 + 2].copy_from_slice(&v.to_le_bytes()));
                let e = expect_err(&m, &what(&format!("index {v}")));
                assert!(
                    matches!(e, BlobError::BadTable(_)),
                    "{}: {e:?}",
                    what("index")
                );
            }
            // element type: unknown, or valid but not the spec's
            for v in [
                0u8,
                3,
                4,
                5,
                6,
                7,
                255,
                if orig[e0 + 2] == 1 { 2 } else { 1 },
            ] {
                if v == orig[e0 + 2] {
                    continue;
                }
                let m = mutate(&|m| m[e0 + 2] = v);
                let e = expect_err(&m, &what(&format!("elem {v}")));
                assert!(
                    matches!(e, BlobError::BadTable(_)),
                    "{}: {e:?}",
                    what("elem")
                );
            }
            // rank
            for v in [0u8, 1, 2, 3, 4, 5, 255] {
                if v == orig[e0 + 3] {
                    continue;
                }
                let m = mutate(&|m| m[e0 + 3] = v);
                let e = expect_err(&m, &what(&format!("rank {v}")));
                assert_eq!(
                    e,
                    BlobError::ShapeMismatch { index: idx },
                    "{}",
                    what("rank")
                );
            }
            // offset: misaligned, overlapping, outside
            let off = rd_u32(orig, e0 + 4);
            for delta in [1u32, 2, 4, 8, 15] {
                let m = mutate(&|m| wr_u32(m, e0 + 4, off + delta));
                let e = expect_err(&m, &what(&format!("offset +{delta}")));
                assert_eq!(e, BlobError::Misaligned, "{}", what("offset"));
            }
            let m = mutate(&|m| wr_u32(m, e0 + 4, off + 16));
            let e = expect_err(&m, &what("offset +16"));
            assert!(
                matches!(e, BlobError::OutOfBounds { index } if index == idx || index == idx + 1),
                "{}: {e:?}",
                what("offset +16")
            );
            for v in [0u32, off.wrapping_sub(16), !15u32, 0x8000_0000] {
                let m = mutate(&|m| wr_u32(m, e0 + 4, v));
                let e = expect_err(&m, &what(&format!("offset {v}")));
                assert!(
                    matches!(e, BlobError::OutOfBounds { index } if index == idx || index == idx + 1),
                    "{}: {e:?}",
                    what("offset")
                );
            }
            if i > 0 {
                // Overlap: the same offset as the previous tensor.
                let prev = rd_u32(orig, ent(i - 1) + 4);
                let m = mutate(&|m| wr_u32(m, e0 + 4, prev));
                let e = expect_err(&m, &what("offset = previous"));
                assert_eq!(
                    e,
                    BlobError::OutOfBounds { index: idx },
                    "{}",
                    what("overlap")
                );
            }
            // length
            let len = rd_u32(orig, e0 + 8);
            for v in [0u32, len - 1, len + 1, len * 2, u32::MAX] {
                let m = mutate(&|m| wr_u32(m, e0 + 8, v));
                let e = expect_err(&m, &what(&format!("len {v}")));
                assert_eq!(
                    e,
                    BlobError::ShapeMismatch { index: idx },
                    "{}",
                    what("len")
                );
            }
        }
    }
}

/// The conv shift words of `quant.meta` (format version 5: requantization shift in bits 0-7,
/// bias shift in bits 8-15): a bias shift above 15 (14 with 16-bit activations), a shift outside
/// 1..=62 or any bit above 15 is refused with `BadTable`; the largest legal bias shift parses
/// and runs.
#[test]
fn conv_shift_words_are_range_checked() {
    use ldp_core::quant::specs::{conv_shift_word, conv_shifts};
    for b in blobs().into_iter().filter(|b| b.int8) {
        let buf = AlignedBytes::from_slice(&b.bytes);
        let model = Model::parse(buf.as_bytes()).unwrap();
        let a16 = ldp_core::quant::a16::is_a16(&model);
        let meta = model.find("quant.meta", "").unwrap();
        let (_, entry, data) = model.tensor(meta).unwrap();
        let at = |i: usize| entry.offset as usize + 4 * i;
        let word = |i: usize| i32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap());
        // A 16-bit input's first conv keeps its biases within ±2^29 as well.
        let first = match model.arch() {
            ldp_core::Arch::Ldp => {
                ldp_core::graph::meta::node(ldp_core::graph::ldp::NODES, 0).shift
            }
            ldp_core::Arch::MobileVlmV1 => {
                ldp_core::graph::meta::node(ldp_core::graph::mobilevlm_v1::NODES, 0).shift
            }
            ldp_core::Arch::Mlp2xGelu => ldp_core::graph::meta::shift(0),
            ldp_core::Arch::MobileVlmV2 => usize::MAX,
        };
        let x16 = ldp_core::quant::is_x16(&model);
        for &i in ldp_core::quant::conv_shift_indices(model.arch()) {
            let max_bias_shift = if a16 || (x16 && i == first) { 14 } else { 15 };
            let (shift, _) = conv_shifts(word(i));
            let with = |w: i32| {
                let mut m = b.bytes.clone();
                m[at(i)..at(i) + 4].copy_from_slice(&w.to_le_bytes());
                fix_crc(&mut m);
                m
            };
            for (w, tag) in [
                (
                    conv_shift_word(shift, max_bias_shift + 1),
                    "bias shift too big",
                ),
                (conv_shift_word(shift, 255), "bias shift 255"),
                (conv_shift_word(0, 0), "shift 0"),
                (conv_shift_word(63, 0), "shift 63"),
                (word(i) | 1 << 16, "bit 16"),
                (-1, "-1"),
            ] {
                let what = format!("{}: meta[{i}] = {w:#x} ({tag})", b.name);
                let e = expect_err(&with(w), &what);
                assert!(matches!(e, BlobError::BadTable(_)), "{what}: {e:?}");
            }
            let what = format!("{}: meta[{i}] bias shift {max_bias_shift}", b.name);
            assert_eq!(
                check(&with(conv_shift_word(shift, max_bias_shift)), &what),
                Ok(()),
                "{what}"
            );
        }
    }
}

/// MobileVLM V1 with 16-bit activations at 2048 channels (squeeze width 512), where the
/// accumulator budget (`K·127·Q ≤ 2^30`) allows saturations up to 4128 for a 2048-wide reader
/// and 16513 for the 512-wide `fc2`: raising any
/// saturation that a Linear or squeeze-excitation reads (the input's, `h1`, each LayerNorm's,
/// each squeeze-excitation's output and hidden vector) one past its budget (or past 32767) is
/// refused with `BadTable`; the blob as written parses and runs; a value no Linear reads (a depthwise output)
/// may hold 32767, and a saturation of 0 is refused everywhere.
#[test]
fn a16_v1_saturations_over_the_budget_are_refused() {
    use ldp_core::graph::meta;
    let cfg = ModelConfig::MobileVlmV1(V1Config::new(16, 2048, 2));
    let model = FloatModel::synthetic(cfg, 31);
    let opts = Int8Options {
        calib_method: CalibMethod::Minmax,
        ..Int8Options::default()
    };
    let bytes = quantize::int8(&model, Some(&calib(cfg, 32)), &opts).unwrap();
    assert_eq!(check(&bytes, "V1 2048 a16"), Ok(()));
    let buf = AlignedBytes::from_slice(&bytes);
    let m = Model::parse(buf.as_bytes()).unwrap();
    assert!(ldp_core::quant::a16::is_a16(&m));
    let (_, entry, _) = m.tensor(m.find("quant.meta", "").unwrap()).unwrap();
    let at = |i: usize| entry.offset as usize + 4 * i;
    let with = |i: usize, v: i32| {
        let mut b = bytes.clone();
        b[at(i)..at(i) + 4].copy_from_slice(&v.to_le_bytes());
        fix_crc(&mut b);
        b
    };
    let nodes = ldp_core::graph::mobilevlm_v1::NODES;
    // The budget of a reader `k` wide, capped at 32767 (the input's 16-wide reader).
    let budget = |k: usize| ((1i64 << 30) / (127 * k as i64)).min(32767) as i32;
    let (c_in, c, s) = (
        16,
        2048,
        ldp_core::arch::mobilevlm_v1::make_divisible(2048 / 4, 8),
    );
    // (entry, budget of its readers)
    let mut budgeted = vec![
        (meta::Z_X, budget(c_in)),
        (meta::node(nodes, 0).out, budget(c)),
    ];
    for b in 0..2 {
        let k = ldp_core::graph::mobilevlm_v1::block_node(b);
        budgeted.push((meta::node(nodes, k + 1).out, budget(c))); // LayerNorm + Hardswish → SE
        budgeted.push((meta::node(nodes, k + 2).pre, budget(s))); // SE hidden → fc2
        budgeted.push((meta::node(nodes, k + 2).out, budget(c))); // SE → projection
    }
    assert_eq!((budget(c), budget(s)), (4128, 16513));
    for &(i, q) in &budgeted {
        let what = format!("meta[{i}] = {}", q + 1);
        let e = expect_err(&with(i, q + 1), &what);
        assert!(matches!(e, BlobError::BadTable(_)), "{what}: {e:?}");
        assert_eq!(check(&with(i, q), &format!("meta[{i}] = {q}")), Ok(()));
        let e = expect_err(&with(i, 0), &format!("meta[{i}] = 0"));
        assert!(matches!(e, BlobError::BadTable(_)), "meta[{i}] = 0: {e:?}");
    }
    // The depthwise outputs feed LayerNorms only: 32767 is legal, 32768 is not.
    for b in 0..2 {
        let i = meta::node(nodes, ldp_core::graph::mobilevlm_v1::block_node(b)).out;
        assert_eq!(check(&with(i, 32767), "dw 32767"), Ok(()));
        let e = expect_err(&with(i, 32768), "dw 32768");
        assert!(matches!(e, BlobError::BadTable(_)), "dw 32768: {e:?}");
    }
}

#[test]
fn huge_counts_and_sizes_are_rejected_quickly() {
    for b in blobs() {
        for (at, v) in [
            (32usize, u32::MAX),
            (32, 1 << 30),
            (12, 1 << 16),
            (16, 1 << 16),
        ] {
            let mut m = b.bytes.clone();
            wr_u32(&mut m, at, v);
            fix_crc(&mut m);
            let t = std::time::Instant::now();
            let _ = expect_err(&m, &format!("{}: u32 at {at} = {v}", b.name));
            assert!(t.elapsed().as_millis() < 500, "slow rejection");
        }
        // A grid that makes an activation map exceed the limit.
        let mut m = b.bytes.clone();
        wr_u32(&mut m, 20, 1 << 16);
        wr_u32(&mut m, 24, 1 << 16);
        fix_crc(&mut m);
        assert!(matches!(
            expect_err(&m, &format!("{}: 65536x65536 grid", b.name)),
            BlobError::BadHeader(_)
        ));
    }
}

#[test]
fn misaligned_memory_is_rejected() {
    for b in blobs() {
        let mut buf = AlignedBytes::zeroed(b.bytes.len() + 16);
        for shift in [1usize, 2, 4, 8] {
            buf.as_mut_bytes()[shift..shift + b.bytes.len()].copy_from_slice(&b.bytes);
            let s = &buf.as_bytes()[shift..shift + b.bytes.len()];
            let r = catch_unwind(AssertUnwindSafe(|| Model::parse(s).map(|_| ())));
            assert_eq!(
                r.unwrap_or_else(|_| panic!("panic")),
                Err(BlobError::Misaligned),
                "{} at +{shift}",
                b.name
            );
        }
    }
}

/// Flips data bytes (every one of small blobs, every 3rd of larger ones) with the CRC recomputed.
fn data_flips(int8: bool) {
    for b in blobs().into_iter().filter(|b| b.int8 == int8) {
        let buf = AlignedBytes::from_slice(&b.bytes);
        let model = Model::parse(buf.as_bytes()).unwrap();
        let data_start = model.header().data_offset as usize;
        let owner = |i: usize| -> String {
            (0..model.tensor_count())
                .filter_map(|t| model.tensor(t))
                .find(|(_, e, _)| (e.offset as usize..(e.offset + e.len) as usize).contains(&i))
                .map(|(s, e, _)| format!("`{}` +{}", s.name, i - e.offset as usize))
                .unwrap_or_else(|| "padding".to_string())
        };
        let end = b.bytes.len() - 4;
        let step = if end - data_start > 6000 { 3 } else { 1 };
        let mut n = 0;
        for i in (data_start..end).step_by(step) {
            for mask in [0x40u8, 0xFF] {
                let mut m = b.bytes.clone();
                m[i] ^= mask;
                fix_crc(&mut m);
                let what = format!("{}: data byte {i} ({}) ^= {mask:#x}", b.name, owner(i));
                let r = check(&m, &what);
                // Float blobs accept any finite data (a flip into an all-ones exponent makes a
                // NaN or infinity, which the reader refuses); int8 parameters are range-checked
                // and may be refused.
                assert!(
                    int8 || r.is_ok() || matches!(r, Err(BlobError::NonFinite { .. })),
                    "{what}: rejected with {r:?}"
                );
                n += 1;
            }
        }
        println!("{}: {n} data mutations ran", b.name);
    }
}

/// A NaN or an infinity written into an f32 or f16 weight, with the CRC recomputed (so the file
/// is "intact"), is refused by the reader with `NonFinite`, naming the tensor and the element;
/// before, every output of such a model was NaN.
#[test]
fn non_finite_float_weights_with_valid_crc_are_rejected() {
    use ldp_core::blob::format::ElemType;
    let mut cases = 0;
    for b in blobs().into_iter().filter(|b| !b.int8) {
        let buf = AlignedBytes::from_slice(&b.bytes);
        let model = Model::parse(buf.as_bytes()).unwrap();
        // Every float tensor of the blob, the first and the last element.
        for t in 0..model.tensor_count() {
            let (spec, e, _) = model.tensor(t).unwrap();
            let (size, values): (usize, &[&[u8]]) = match e.elem {
                ElemType::F32 => (
                    4,
                    &[
                        &f32::NAN.to_le_bytes(),
                        &f32::INFINITY.to_le_bytes(),
                        &f32::NEG_INFINITY.to_le_bytes(),
                    ],
                ),
                ElemType::F16 => (
                    2,
                    &[
                        &half::f16::NAN.to_le_bytes(),
                        &half::f16::INFINITY.to_le_bytes(),
                        &half::f16::NEG_INFINITY.to_le_bytes(),
                    ],
                ),
                _ => continue,
            };
            let n = e.len as usize / size;
            for (k, v) in values.iter().enumerate() {
                let element = if k == 0 { 0 } else { n - 1 };
                let at = e.offset as usize + element * size;
                let mut m = b.bytes.clone();
                m[at..at + size].copy_from_slice(v);
                fix_crc(&mut m);
                let what = format!("{}: `{}`[{element}] = {v:?}", b.name, spec.name);
                let err = expect_err(&m, &what);
                assert_eq!(
                    err,
                    BlobError::NonFinite {
                        index: t as u16,
                        name: spec.name,
                        param: spec.param,
                        element
                    },
                    "{what}"
                );
                assert!(err.to_string().contains("NaN or infinite"), "{err}");
                cases += 1;
            }
        }
    }
    assert!(cases > 100, "{cases}");
}

#[test]
fn data_byte_flips_with_valid_crc_parse_and_run() {
    data_flips(false);
}

/// The same for int8 blobs: a corrupted quantization parameter must be refused by the reader or
/// computed with (wrapping) integer arithmetic, never panic.
/// (Found by the fuzzer: a flipped zero point used to overflow `(x - z) * w`; `quant::validate`
/// now range-checks zero points, shifts and multipliers, and the kernels use wrapping arithmetic.)
#[test]
fn int8_data_byte_flips_with_valid_crc_never_panic() {
    data_flips(true);
}

/// Writes the fuzz seed corpus (`host-tests/fuzz/seeds/parse_blob/`): tiny valid blobs of every
/// architecture in f32, f16 and int8 (per-tensor and per-channel input). Run with `--ignored write_fuzz_seeds` after a format change.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/parse_blob");
    std::fs::create_dir_all(&dir).unwrap();
    let tiny = [
        (
            "ldp_2to2_2x2",
            ModelConfig::Ldp(LdpConfig {
                c_in: 2,
                c_out: 2,
                h: 2,
                w: 2,
            }),
        ),
        (
            "ldp_2to3_3x1",
            ModelConfig::Ldp(LdpConfig {
                c_in: 2,
                c_out: 3,
                h: 3,
                w: 1,
            }),
        ),
        (
            "v1_4to8_h2",
            ModelConfig::MobileVlmV1(V1Config::new(4, 8, 2)),
        ),
        (
            "v2_2to4_h2",
            ModelConfig::MobileVlmV2(V2Config {
                c_in: 2,
                c_out: 4,
                h: 2,
            }),
        ),
        (
            "mlp_3to4_2x3",
            ModelConfig::Graph(ldp_core::graph::GraphConfig {
                arch: ldp_core::Arch::Mlp2xGelu,
                c_in: 3,
                c_out: 4,
                h: 2,
                w: 3,
            }),
        ),
    ];
    for (i, (name, cfg)) in tiny.into_iter().enumerate() {
        let model = FloatModel::synthetic(cfg, 100 + i as u64);
        let mut out = Vec::new();
        for dtype in [DType::F32, DType::F16] {
            out.push((dtype.name(), write::float_blob(&model, dtype).unwrap()));
        }
        let cal = calib(cfg, 200 + i as u64);
        let v2 = matches!(cfg, ModelConfig::MobileVlmV2(_));
        let v1 = matches!(cfg, ModelConfig::MobileVlmV1(_));
        let graph = matches!(cfg, ModelConfig::Graph(_));
        let variants = [(InputQuant::PerTensor, Activations::Auto, "int8_pt")]
            .into_iter()
            .chain((!graph).then_some((InputQuant::PerChannel, Activations::Auto, "int8_pc")))
            .chain((v2 || graph).then_some((InputQuant::PerTensor, Activations::Int16, "int8_a16")))
            .chain((!v2).then_some((InputQuant::Int16, Activations::Auto, "int8_x16")))
            .chain(v1.then_some((InputQuant::PerTensor, Activations::Int8, "int8_a8")));
        for (iq, activations, tag) in variants {
            let opts = Int8Options {
                calib_method: CalibMethod::Minmax,
                input_quant: iq,
                activations,
                ..Int8Options::default()
            };
            out.push((tag, quantize::int8(&model, Some(&cal), &opts).unwrap()));
        }
        for (tag, bytes) in out {
            check(&bytes, name).unwrap();
            std::fs::write(dir.join(format!("{name}_{tag}.ldp")), bytes).unwrap();
        }
    }
}
