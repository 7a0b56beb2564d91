#!/usr/bin/env python3
"""onnxruntime's int8 quantization on every case of the int8 generalization sweep (issue 16).

    /work/venv/bin/python tools/bench/ort_sweep.py                 # all cases -> docs/ort_sweep.tsv
    /work/venv/bin/python tools/bench/ort_sweep.py --only v2_ --out /tmp/v2.tsv
    /work/venv/bin/python tools/bench/ort_sweep.py --skip-real     # without the 1024->2048 cases

For each case of host-tests/golden/sweep/index.json it rebuilds the PyTorch module of
tools/golden/gen_golden.py with the weights tools/golden/gen_sweep.py draws (both modules are
imported; nothing of the generator is duplicated), exports it to ONNX (float32, opset 17, batch 1,
the sweep's input layout: ldp NCHW [1, c_in, h, w], MobileVLM V1/V2 and LLaVA's mlp2x-gelu tokens
[1, h*w, c_in]; mlp2x-gelu is the plain nn.Sequential Linear-GELU-Linear, exported as it is) and runs

The exported model first goes through onnxruntime's `quant_pre_process` (shape inference and
basic graph cleanup, as onnxruntime recommends); every quantizer then sees that model with its
default operator set (all ops onnxruntime can quantize, LayerNormalization included). Then

* onnxruntime STATIC quantization (`quantize_static`, QuantFormat.QDQ, per_channel=True, int8
  weights, int8 activations -- uint8 activations only if int8 fails), calibrated on the case's
  4 calibration samples (indices 0..3), once per calibrate_method: MinMax, Percentile (ORT's
  default 99.999, symmetric) and Entropy (num_quantized_bins 128), the two histogram methods with
  --bins (2048) histogram bins. onnxruntime 1.32's quantize_static does not forward a bin count
  to its calibrator (CalibNumBins is ignored), so for these two the script runs onnxruntime's
  calibrator itself (`create_calibrator`, same model, same op types, same 4 samples) and hands
  the ranges to quantize_static as its calibration cache;
* onnxruntime DYNAMIC quantization (`quantize_dynamic`, per_channel, int8 weights) as an extra
  column; the progress line says which ops it quantized (it handles MatMul and Conv).

Each quantized model runs on the case's held-out samples (indices 4..4+n_heldout, one at a time)
in a single-thread CPU InferenceSession; the error is the relative L2 error
||y - ref|| / ||ref|| in float64 over all held-out samples of the case, ref being the committed
PyTorch float64 output host-tests/golden/sweep/<case>/heldout_expected.npy -- the same metric
and the same reference as our int8 numbers for the sweep.

`ort_best_static` is the smallest of the three static columns, i.e. the calibration method is
picked per case *after* seeing the held-out error: a best case for onnxruntime.

Export detail: torch's ONNX exporter refuses `AdaptiveAvgPool2d` when the output size does not
divide the input size (MobileVLM V2's 12x12 token pool on 6x6 and 16x16 grids). For those cases
only, the pool is replaced before export by an exact equivalent (per axis, the mean of each
adaptive window, Slice + ReduceMean + Concat), checked against the original module in float32.

Writes a TSV (--out, default docs/ort_sweep.tsv) with the columns
case, split, dist, positions (h*w, the input grid), ort_minmax, ort_percentile, ort_entropy,
ort_best_static, ort_dynamic; a failed method is written as `fail`.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools", "golden"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gen_golden as G  # noqa: E402
import gen_sweep as S  # noqa: E402

COLUMNS = ["case", "split", "dist", "positions", "ort_minmax", "ort_percentile", "ort_entropy",
           "ort_best_static", "ort_dynamic"]
STATIC_METHODS = ["MinMax", "Percentile", "Entropy"]


# ----------------------------------------------------------------------------------
# Model and inputs, exactly as gen_sweep.main draws them
# ----------------------------------------------------------------------------------


def build_model(entry):
    """The module with the drawn parameters (gen_sweep.main, float32)."""
    arch, c_in, c_out, seed = entry["arch"], entry["c_in"], entry["c_out"], entry["seed"]
    model = G.BUILDERS[arch](c_in, c_out).eval()
    kinds = S.param_kinds(model)
    params = {n: torch.from_numpy(S.draw_param(seed, i, n, sh, k)) for i, (n, sh, k) in enumerate(kinds)}
    model.load_state_dict(params, strict=True)
    return model.to(torch.float32)


def sample(entry, index):
    """Sample `index` of the case with a batch axis of 1 (float32)."""
    x = S.draw_input(entry["seed"], index, entry["arch"], entry["c_in"], entry["h"], entry["w"],
                     entry["dist"])
    return x[None]


class ExactAdaptiveAvgPool2d(torch.nn.Module):
    """AdaptiveAvgPool2d written as per-axis window means (exportable for any sizes). The input
    size is fixed at construction: window bounds computed from a traced shape would be exported
    as integer Div, which truncates where PyTorch floors."""

    def __init__(self, in_size, out_size):
        super().__init__()
        self.windows = [self.bounds(int(n_in), int(n_out)) for n_in, n_out in zip(in_size, out_size)]

    @staticmethod
    def bounds(n_in, n_out):
        # PyTorch's adaptive windows: [floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out))
        return [((i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]

    @staticmethod
    def _axis(x, axis, windows):
        if all(e - s == 1 for s, e in windows) and len(windows) == x.shape[axis]:
            return x
        parts = [x.narrow(axis, s, e - s).mean(dim=axis, keepdim=True) for s, e in windows]
        return torch.cat(parts, dim=axis)

    def forward(self, x):
        return self._axis(self._axis(x, 2, self.windows[0]), 3, self.windows[1])


def exportable(model, entry):
    """Replaces a non-dividing AdaptiveAvgPool2d (V2) by the exact equivalent. Returns a note."""
    if entry["arch"] != "mobilevlm-v2":
        return ""
    pool = model.dwn.dwn[0]
    out = pool.output_size
    out = (out, out) if isinstance(out, int) else tuple(out)
    if entry["h"] % out[0] == 0 and entry["w"] % out[1] == 0:
        return ""
    x = torch.from_numpy(sample(entry, 0))
    with torch.no_grad():
        y0 = model(x)
        model.dwn.dwn[0] = ExactAdaptiveAvgPool2d((entry["h"], entry["w"]), out)
        y1 = model(x)
    err = float((y1 - y0).norm() / y0.norm())
    assert err < 1e-5, f"pool replacement differs: {err}"
    return f"pool->slices ({err:.0e})"


# ----------------------------------------------------------------------------------
# onnxruntime
# ----------------------------------------------------------------------------------


def session(ort, path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def heldout_error(ort, path, entry, expected):
    sess = session(ort, path)
    name = sess.get_inputs()[0].name
    ys = []
    for j in range(entry["n_heldout"]):
        x = sample(entry, entry["n_calib"] + j)
        ys.append(sess.run(None, {name: x})[0][0])
    y = np.stack(ys).astype(np.float64)
    ref = expected.astype(np.float64)
    assert y.shape == ref.shape, (y.shape, ref.shape)
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def make_reader(entry, input_name):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{input_name: sample(entry, k)} for k in range(entry["n_calib"])])

        def get_next(self):
            return next(self.it, None)

    return Reader()


def op_counts(path):
    import onnx

    counts = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def calibration_cache(pre_path, cache_path, tmp, entry, method, bins, qbins):
    """Ranges from onnxruntime's own histogram calibrator with `bins` histogram bins, saved as a
    calibration cache for quantize_static. quantize_static itself passes no bin count to the
    calibrator (onnxruntime 1.32 forwards only CalibPercentile / CalibTensorRangeSymmetric / ...
    and ignores CalibNumBins), which leaves Entropy at 128 bins = 128 quantized bins, where
    its only candidate threshold is the maximum (it then equals MinMax)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    op_types = list(set(list(QLinearOpsRegistry.keys()) + list(QDQRegistry.keys())))
    extra = {"num_bins": bins}
    if method == "Entropy":
        extra["num_quantized_bins"] = qbins
    with tempfile.TemporaryDirectory(prefix="calib_", dir=tmp) as d:
        cal = create_calibrator(pre_path, op_types,
                                augmented_model_path=os.path.join(d, "augmented.onnx"),
                                calibrate_method=getattr(CalibrationMethod, method),
                                extra_options=extra)
        cal.collect_data(make_reader(entry, "x"))
        save_tensors_data(cal.compute_data(), cache_path)
        del cal


def run_static(ort, fp_path, q_path, tmp, entry, expected, method, bins, qbins):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    errors = []
    cache = None
    if method in ("Percentile", "Entropy"):
        cache = q_path + ".calib.json"
        try:
            calibration_cache(fp_path, cache, tmp, entry, method, bins, qbins)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{method} calibration: {type(e).__name__}: {str(e)[:200]}")
            return None, "", errors
    for act in (QuantType.QInt8, QuantType.QUInt8):
        try:
            quantize_static(
                fp_path, q_path, make_reader(entry, "x"),
                quant_format=QuantFormat.QDQ, per_channel=True,
                weight_type=QuantType.QInt8, activation_type=act,
                calibrate_method=getattr(CalibrationMethod, method),
                calibration_cache_path=cache,
            )
            err = heldout_error(ort, q_path, entry, expected)
            return err, ("" if act == QuantType.QInt8 else "u8act"), errors
        except Exception as e:  # noqa: BLE001 -- record and try the next activation type
            errors.append(f"{method}/{act.name}: {type(e).__name__}: {str(e)[:200]}")
    return None, "", errors


def run_dynamic(ort, fp_path, q_path, entry, expected):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(fp_path, q_path, per_channel=True, weight_type=QuantType.QInt8)
    c = op_counts(q_path)
    did = ",".join(f"{k}x{c[k]}" for k in ("MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul")
                   if c.get(k))
    left = ",".join(f"{k}x{c[k]}" for k in ("MatMul", "Conv", "Gemm") if c.get(k))
    note = f"dyn q[{did or '-'}] float[{left or '-'}]"
    return heldout_error(ort, q_path, entry, expected), note


def fmt(v):
    return "fail" if v is None else f"{v:.4f}"


def run_case(ort, entry, tmp, bins, qbins):
    name = entry["name"]
    expected = np.load(os.path.join(ROOT, "host-tests", "golden", "sweep", name, "heldout_expected.npy"))
    model = build_model(entry)
    note = exportable(model, entry)
    fp_path = os.path.join(tmp, f"{name}.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(sample(entry, 0)),), fp_path, opset_version=17,
                          input_names=["x"], output_names=["y"])
    del model
    notes = [note] if note else []
    f32 = heldout_error(ort, fp_path, entry, expected)
    notes.append(f"f32 {f32:.1e}")

    # quant_pre_process (shape inference + basic graph cleanup) as onnxruntime recommends
    pre_path = os.path.join(tmp, f"{name}.pre.onnx")
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(fp_path, pre_path)
    except Exception as e:  # noqa: BLE001
        notes.append(f"no pre-process ({type(e).__name__})")
        pre_path = fp_path

    res = {}
    failures = []
    for method in STATIC_METHODS:
        err, tag, errs = run_static(ort, pre_path, os.path.join(tmp, f"{name}.{method}.onnx"), tmp,
                                    entry, expected, method, bins, qbins)
        res[method] = err
        failures += errs
        if tag:
            notes.append(f"{method} {tag}")
    try:
        res["dynamic"], dnote = run_dynamic(ort, pre_path, os.path.join(tmp, f"{name}.dyn.onnx"),
                                            entry, expected)
        notes.append(dnote)
    except Exception as e:  # noqa: BLE001
        res["dynamic"] = None
        failures.append(f"dynamic: {type(e).__name__}: {str(e)[:200]}")
    for f in os.listdir(tmp):  # the real-size models are large
        if f.startswith(name + "."):
            os.remove(os.path.join(tmp, f))
    statics = [res[m] for m in STATIC_METHODS if res[m] is not None]
    best = min(statics) if statics else None
    row = {
        "case": name, "split": entry["split"], "dist": entry["dist"],
        "positions": str(entry["h"] * entry["w"]),
        "ort_minmax": fmt(res["MinMax"]), "ort_percentile": fmt(res["Percentile"]),
        "ort_entropy": fmt(res["Entropy"]), "ort_best_static": fmt(best),
        "ort_dynamic": fmt(res["dynamic"]),
    }
    return row, notes, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "ort_sweep.tsv"))
    ap.add_argument("--only", default=None, help="run only cases whose name contains this string")
    ap.add_argument("--skip-real", action="store_true",
                    help="skip the MobileVLM real-size (1024->2048) cases")
    ap.add_argument("--bins", type=int, default=2048, help="histogram bins of Percentile and Entropy")
    ap.add_argument("--quantized-bins", type=int, default=128,
                    help="Entropy's num_quantized_bins (onnxruntime's default 128)")
    args = ap.parse_args()

    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    torch.set_num_threads(1)
    with open(os.path.join(ROOT, "host-tests", "golden", "sweep", "index.json")) as f:
        index = json.load(f)
    cases = [e for e in index if args.only is None or args.only in e["name"]]
    if args.skip_real:
        cases = [e for e in cases if not e["real_size"]]
    cases.sort(key=lambda e: e["real_size"])  # the real-size cases last (stable otherwise)
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}: {len(cases)} cases, "
          f"bins {args.bins} -> {args.out}", flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    rows = []
    all_failures = []

    def write():
        with open(args.out, "w") as f:
            f.write("\t".join(COLUMNS) + "\n")
            for r in rows:
                f.write("\t".join(r[c] for c in COLUMNS) + "\n")

    with tempfile.TemporaryDirectory(prefix="ort_sweep_") as tmp:
        for entry in cases:
            t0 = time.time()
            row, notes, failures = run_case(ort, entry, tmp, args.bins, args.quantized_bins)
            rows.append(row)
            all_failures += [f"{entry['name']}: {x}" for x in failures]
            write()  # after every case, so an interrupted run keeps what it has
            print(f"  {row['case']:30s} {row['split']:8s} minmax {row['ort_minmax']} "
                  f"pct {row['ort_percentile']} entropy {row['ort_entropy']} "
                  f"best {row['ort_best_static']} dyn {row['ort_dynamic']}  "
                  f"[{'; '.join(notes)}] {time.time() - t0:.0f} s", flush=True)
    write()
    if all_failures:
        print("failures:")
        for x in all_failures:
            print("  " + x)
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
