//! `ldp-quant run` streams a batch one sample at a time: each output sample must equal the
//! output of that sample run alone, bit for bit, for any `--threads`, f32 and int8, on the
//! golden models' held-out batches (all three architectures).

use std::path::Path;
use std::process::Command;

use ldp_quant::npy;

const BIN: &str = env!("CARGO_BIN_EXE_ldp-quant");

fn ok(args: &[&str]) {
    let o = Command::new(BIN)
        .args(args)
        .output()
        .expect("spawn ldp-quant");
    assert!(
        o.status.success(),
        "ldp-quant {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn batch_rows_equal_single_runs_for_any_thread_count() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-tests/golden");
    let dir = tempfile::tempdir().unwrap();
    for (case, grid) in [
        ("ldp_c16_8x8", "8x8"),
        ("v1_32to64_h6", "6x6"),
        ("v2_32to64_h6", "6x6"),
    ] {
        let g = golden.join(case);
        for dtype in ["f32", "int8"] {
            let blob = dir.path().join(format!("{case}.{dtype}.ldp"));
            let w = g.join("weights.safetensors");
            let mut conv = vec!["convert", "--weights", s(&w), "--grid", grid];
            conv.extend(["--dtype", dtype, "-o", s(&blob)]);
            let calib = g.join("calib.npy");
            if dtype == "int8" {
                conv.extend(["--calib", s(&calib)]);
            }
            ok(&conv);
            let batch = npy::read_f32(&g.join("heldout.npy")).unwrap();
            assert!(batch.shape[0] >= 2, "{case}: held-out batch of one");
            let per: usize = batch.shape[1..].iter().product();
            let mut outs = Vec::new();
            for threads in ["1", "2", "3"] {
                let y = dir.path().join(format!("y{threads}.npy"));
                let input = g.join("heldout.npy");
                ok(&[
                    "run",
                    "--model",
                    s(&blob),
                    "--input",
                    s(&input),
                    "-o",
                    s(&y),
                    "--threads",
                    threads,
                ]);
                outs.push(npy::read_f32(&y).unwrap());
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for o in &outs[1..] {
                assert_eq!(o.shape, outs[0].shape);
                assert_eq!(
                    bits(&o.data),
                    bits(&outs[0].data),
                    "{case} {dtype}: threads"
                );
            }
            let y_per = outs[0].data.len() / batch.shape[0];
            for (i, x) in batch.data.chunks_exact(per).enumerate() {
                let xi = dir.path().join("xi.npy");
                let mut shape = vec![1];
                shape.extend_from_slice(&batch.shape[1..]);
                npy::write_f32(&xi, &shape, x).unwrap();
                let yi = dir.path().join("yi.npy");
                ok(&["run", "--model", s(&blob), "--input", s(&xi), "-o", s(&yi)]);
                let single = npy::read_f32(&yi).unwrap();
                assert_eq!(
                    bits(&single.data),
                    bits(&outs[0].data[i * y_per..(i + 1) * y_per]),
                    "{case} {dtype}: sample {i}"
                );
            }
        }
    }
    // No partial file is left behind.
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".partial")));
}
