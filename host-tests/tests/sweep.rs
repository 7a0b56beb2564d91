//! Issue 16: int8 at the defaults on the generalization sweep (`golden/sweep/`), tuning and
//! held-out halves, against PyTorch float64. Prints one `SWEEP` line per case and the
//! distribution per half; fails when any case is above its bound.
//!
//! `LDP_SWEEP_ONLY=<substring>` (manual runs only) keeps the cases whose name contains it;
//! `LDP_SWEEP_DIR=<dir>` runs extra seeds written by `gen_sweep.py --seeds A:B --out <dir>`
//! (split `extra`, no onnxruntime comparison).

use host_tests::sweep::{self, Case};
use ldp_quant::quantize::Int8Options;

struct Row {
    case: Case,
    rel_l2: f64,
    seconds: f64,
    scheme: String,
}

impl Row {
    /// Over its bound (NaN counts as over).
    fn over(&self) -> bool {
        self.rel_l2.is_nan() || self.rel_l2 > self.case.bound()
    }
}

fn measure(case: &Case) -> Row {
    let t = std::time::Instant::now();
    let l = sweep::load(case);
    let load_s = t.elapsed().as_secs_f64();
    let e = sweep::int8_error(case, &l, &Int8Options::default())
        .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
    Row {
        case: case.clone(),
        rel_l2: e.rel_l2,
        // As printed before: loading the case (redrawing weights and inputs) plus quantizing.
        seconds: load_s + e.quantize_s,
        scheme: e.scheme,
    }
}

/// `LDP_SWEEP_ONLY=<substring>`: for manual runs only, keeps the cases whose name contains it
/// (unset, as in CI, every case runs).
fn only() -> Option<String> {
    std::env::var("LDP_SWEEP_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
}

fn run(select: impl Fn(&Case) -> bool) {
    let only = only();
    if let Some(o) = &only {
        println!("SWEEP-ONLY LDP_SWEEP_ONLY={o}: a manual subset, not the full sweep");
    }
    let t = std::time::Instant::now();
    let rows: Vec<Row> = sweep::cases()
        .iter()
        .filter(|c| select(c))
        .filter(|c| only.as_ref().is_none_or(|o| c.name.contains(o.as_str())))
        .map(measure)
        .collect();
    assert!(!rows.is_empty(), "no sweep case selected");
    println!(
        "SWEEP-TIME cases={} seconds={:.1}",
        rows.len(),
        t.elapsed().as_secs_f64()
    );
    for r in &rows {
        println!(
            "SWEEP case={} split={} dist={} positions={} rel_l2={:.4} bound={} ok={} convert_s={:.1} scheme={}",
            r.case.name,
            r.case.split,
            r.case.dist,
            r.case.positions(),
            r.rel_l2,
            r.case.bound(),
            !r.over(),
            r.seconds,
            r.scheme
        );
    }
    for half in ["tuning", "heldout", "extra"] {
        let mut e: Vec<f64> = rows
            .iter()
            .filter(|r| r.case.split == half)
            .map(|r| r.rel_l2 / r.case.bound())
            .collect();
        if e.is_empty() {
            continue;
        }
        e.sort_by(f64::total_cmp);
        let over = rows
            .iter()
            .filter(|r| r.case.split == half && r.over())
            .count();
        println!(
            "SWEEP-SUMMARY split={half} cases={} error/bound median={:.3} worst={:.3} over_bound={over}",
            e.len(),
            e[e.len() / 2],
            e[e.len() - 1]
        );
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.over())
        .map(|r| format!("{} {:.4} > {}", r.case.name, r.rel_l2, r.case.bound()))
        .collect();
    assert!(
        bad.is_empty(),
        "int8 over its bound at the defaults: {bad:?}"
    );
    // The peer: onnxruntime's best static int8 method on the same case (tools/bench/ort_sweep.py,
    // committed in docs/ort_sweep.tsv; the best of MinMax/Percentile/Entropy picked on the
    // held-out samples, so it flatters onnxruntime).
    if sweep::extra_dir().is_some() {
        // Extra seeds (a manual run): onnxruntime was not run on them.
        println!("SWEEP-PEER skipped: LDP_SWEEP_DIR cases are not in docs/ort_sweep.tsv");
        return;
    }
    let ort = ort_best_static();
    let worse: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let o = *ort.get(&r.case.name)?;
            (r.rel_l2.is_nan() || r.rel_l2 > o)
                .then(|| format!("{} ours {:.4} > onnxruntime {o:.4}", r.case.name, r.rel_l2))
        })
        .collect();
    let compared = rows
        .iter()
        .filter(|r| ort.contains_key(&r.case.name))
        .count();
    println!("SWEEP-PEER compared={compared} ours_worse={}", worse.len());
    assert_eq!(
        compared,
        rows.len(),
        "docs/ort_sweep.tsv misses sweep cases"
    );
    assert!(
        worse.is_empty(),
        "less accurate than onnxruntime static int8: {worse:?}"
    );
}

/// `case → ort_best_static` from `docs/ort_sweep.tsv`.
fn ort_best_static() -> std::collections::HashMap<String, f64> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ort_sweep.tsv");
    let text = std::fs::read_to_string(&path).expect("docs/ort_sweep.tsv");
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).expect(name);
    let (c_case, c_best) = (col("case"), col("ort_best_static"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[c_case].to_string(), f[c_best].parse().expect("number"))
        })
        .collect()
}

/// The small and medium cases: every case within its bound and at least as accurate as
/// onnxruntime's best static int8 (issue 16's Done-when; the real sizes are the next test).
#[test]
fn int8_sweep_small_and_medium_within_bounds() {
    run(|c| !c.real_size);
}

/// MobileVLM's real sizes (1024 → 2048 at 24×24), with the same checks.
#[test]
fn int8_sweep_mobilevlm_real_sizes_within_bounds() {
    run(|c| c.real_size);
}

/// The outlier cases (heavy-tailed and CLIP-like, not the real sizes) on 32 *fresh* inputs each
/// (drawn by the same generator after the committed samples; against the f32 model): the two
/// committed held-out samples per case cannot show how often a rare outlier token leaves the
/// calibrated ranges. Checks the pooled error and **each sample on its own** (one new input is
/// what a user runs). MobileVLM V1 with heavy-tailed inputs failed this with int8 activations
/// (about 1 sample in 8 over 0.1); with its 16-bit activations, the default now, it passes
/// (docs/ACCURACY.md, "MobileVLM V1 with 16-bit activations").
#[test]
fn int8_sweep_fresh_inputs_within_bounds() {
    fresh_outliers(|_| true);
}

/// 32 fresh inputs per outlier case (not the real sizes) selected by `select`: each sample's
/// error and the pooled error within the bound.
fn fresh_outliers(select: impl Fn(&Case) -> bool) {
    let only = only();
    let mut bad = Vec::new();
    for c in sweep::cases()
        .iter()
        .filter(|c| c.dist != "normal" && !c.real_size && select(c))
        .filter(|c| only.as_ref().is_none_or(|o| c.name.contains(o.as_str())))
    {
        let l = sweep::load(c);
        let opts = ldp_quant::quantize::Int8Options::default();
        let f =
            sweep::fresh_stats(c, &l, &opts, 32).unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
        let limit = c.bound();
        let worst = f
            .each
            .iter()
            .copied()
            .fold(0f64, |a, b| if b.is_nan() { f64::NAN } else { a.max(b) });
        let over = f.each.iter().filter(|e| e.is_nan() || **e > limit).count();
        println!(
            "SWEEP-FRESH case={} split={} dist={} rel_l2={:.4} worst_sample={worst:.4} samples_over={over}/{} bound={} ok={}",
            c.name,
            c.split,
            c.dist,
            f.pooled,
            f.each.len(),
            limit,
            f.pooled <= limit && over == 0,
        );
        if f.pooled.is_nan() || f.pooled > limit {
            bad.push(format!("{} pooled {:.4} > {limit:.4}", c.name, f.pooled));
        }
        if over > 0 {
            bad.push(format!(
                "{} {over} of {} samples over {limit:.4}, worst {worst:.4}",
                c.name,
                f.each.len()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "int8 over its bound on fresh inputs: {bad:?}"
    );
}
