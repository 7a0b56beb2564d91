#!/usr/bin/env python3
"""Time ldp-core against PyTorch and onnxruntime on the same weights, single thread.

    python3 tools/bench/compare.py                      # all three models, f32 + int8
    python3 tools/bench/compare.py --models ldp --runs 20 --dtypes f32,f16,int8

For each model (the seed `ldp` 128->128 on [1,128,64,64]; MobileVLM V1 and V2 1024->2048 on
576 tokens) it builds the PyTorch module exactly as tools/golden/gen_golden.py does (its
builders are imported), saves the weights as safetensors, an input and a small calibration set
as .npy, then times

* PyTorch f32 eager (`torch.set_num_threads(1)`, `torch.inference_mode()`);
* onnxruntime f32 (the module exported with `torch.onnx.export`, `intra_op_num_threads=1`,
  `inter_op_num_threads=1`, all graph optimizations) and onnxruntime int8 (the same ONNX
  model through `onnxruntime.quantization.quantize_dynamic`, when available);
* ldp-core (`host-tests/examples/bench_model.rs`, built here with `cargo build --release`)
  on the same safetensors and input, in each requested dtype; its f32 output is checked
  against PyTorch's (relative L2 error).

Every timing takes `--runs` runs after `--warmup` untimed ones and reports the median wall
time and the minimum thread CPU time (the least disturbed run: the steadiest figure on a
shared machine). Prints a table
with the ratios (their time / ours: > 1 means ldp-core is faster) and, with `--markdown F`,
writes it as Markdown. Exits 0 with a message when torch is not installed (CI does not run it).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = {
    # name: (arch, c_in, c_out, h, w)
    "ldp": ("ldp", 128, 128, 64, 64),
    "mobilevlm-v1": ("mobilevlm-v1", 1024, 2048, 24, 24),
    "mobilevlm-v2": ("mobilevlm-v2", 1024, 2048, 24, 24),
}


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def time_fn(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": median(wall), "min_ms": min(wall), "cpu_median_ms": median(cpu),
            "cpu_min_ms": min(cpu)}


def build_binary(skip):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target, "release", "examples", "bench_model")
    if not skip:
        cmd = ["cargo", "build", "--release", "-p", "host-tests", "--example", "bench_model"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found (build it, or drop --skip-build)")
    return exe


def run_ours(exe, st, grid, dtype, x_path, calib_path, out_path, runs, warmup):
    # "int8a16": an int8 blob with 16-bit activations (--activations int16, MobileVLM V2 only).
    a16 = dtype == "int8a16"
    cmd = [exe, "--weights", st, "--grid", grid, "--dtype", "int8" if a16 else dtype,
           "--input", x_path, "--runs", str(runs), "--warmup", str(warmup), "--output", out_path]
    if dtype in ("int8", "int8a16"):
        cmd += ["--calib", calib_path]
    if a16:
        cmd += ["--activations", "int16"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ldp,mobilevlm-v1,mobilevlm-v2")
    ap.add_argument("--dtypes", default="f32,int8", help="ldp-core dtypes (f32, f16, int8, int8a16 = int8 weights "
                                                  "with 16-bit activations, V2 only)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--skip-build", action="store_true", help="use the already built binary")
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    ap.add_argument("--workdir", help="keep the weights, inputs and outputs in this folder "
                                      "(default: a temporary folder)")
    args = ap.parse_args()

    try:
        import numpy as np
        import torch
    except ImportError as e:
        print(f"compare.py: PyTorch is not installed ({e}); nothing to compare. "
              "pip install -r tools/golden/requirements.txt")
        return 0
    sys.path.insert(0, os.path.join(ROOT, "tools", "golden"))
    try:
        import gen_golden as gg
    except ImportError as e:
        print(f"compare.py: cannot import tools/golden/gen_golden.py ({e}); "
              "pip install -r tools/golden/requirements.txt")
        return 0
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
        print("onnxruntime not installed (pip install onnxruntime onnx): its columns stay empty")

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    exe = build_binary(args.skip_build)
    dtypes = [d for d in args.dtypes.split(",") if d]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ldp-bench-") as tmp:
        if args.workdir:
            os.makedirs(args.workdir, exist_ok=True)
            tmp = args.workdir
        for name in args.models.split(","):
            arch, c_in, c_out, h, w = MODELS[name]
            model = gg.build_module(arch, c_in, c_out, args.seed).float().eval()
            st = os.path.join(tmp, f"{name}.safetensors")
            gg.save_st(st, gg.param_dict(model))
            rng = np.random.default_rng(args.seed)
            x = gg.draw(rng, 1, arch, c_in, h, w, "normal")
            calib = gg.draw(rng, 4, arch, c_in, h, w, "normal")
            x_path = os.path.join(tmp, f"{name}.x.npy")
            calib_path = os.path.join(tmp, f"{name}.calib.npy")
            np.save(x_path, x)
            np.save(calib_path, calib)
            xt = torch.from_numpy(x)
            print(f"== {name}: input {list(x.shape)}", flush=True)

            with torch.inference_mode():
                y_ref = model(xt).numpy()
                t_torch = time_fn(lambda: model(xt), args.runs, args.warmup)
            print(f"   torch f32        {t_torch['median_ms']:9.2f} ms", flush=True)

            t_ort = t_ort8 = None
            if ort is not None:
                onnx_path = os.path.join(tmp, f"{name}.onnx")
                torch.onnx.export(model, (xt,), onnx_path, opset_version=17,
                                  input_names=["x"], output_names=["y"])
                so = ort.SessionOptions()
                so.intra_op_num_threads = 1
                so.inter_op_num_threads = 1
                so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
                y_ort = sess.run(None, {"x": x})[0]
                err = float(np.linalg.norm(y_ort - y_ref) / np.linalg.norm(y_ref))
                t_ort = time_fn(lambda: sess.run(None, {"x": x}), args.runs, args.warmup)
                t_ort["rel_l2"] = err
                print(f"   onnxruntime f32  {t_ort['median_ms']:9.2f} ms (rel L2 vs torch {err:.1e})",
                      flush=True)
                try:
                    from onnxruntime.quantization import QuantType, quantize_dynamic

                    q_path = os.path.join(tmp, f"{name}.int8.onnx")
                    quantize_dynamic(onnx_path, q_path, weight_type=QuantType.QInt8)
                    sq = ort.InferenceSession(q_path, so, providers=["CPUExecutionProvider"])
                    y8 = sq.run(None, {"x": x})[0]
                    t_ort8 = time_fn(lambda: sq.run(None, {"x": x}), args.runs, args.warmup)
                    t_ort8["rel_l2"] = float(np.linalg.norm(y8 - y_ref) / np.linalg.norm(y_ref))
                    print(f"   onnxruntime int8 {t_ort8['median_ms']:9.2f} ms (dynamic quantization, "
                          f"rel L2 vs torch f32 {t_ort8['rel_l2']:.1e})", flush=True)
                except Exception as e:  # quantization tooling is optional
                    print(f"   onnxruntime int8: skipped ({e})")

            for dt in dtypes:
                out_path = os.path.join(tmp, f"{name}.y_{dt}.npy")
                ours = run_ours(exe, st, f"{h}x{w}", dt, x_path, calib_path, out_path,
                                args.runs, args.warmup)
                y = np.load(out_path)
                ours["rel_l2"] = float(np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref))
                print(f"   ldp-core {dt:<7} {ours['median_ms']:9.2f} ms (rel L2 vs torch f32 "
                      f"{ours['rel_l2']:.1e})", flush=True)
                rows.append((name, dt, ours, t_torch, t_ort, t_ort8))

    hdr = ("| model | ldp-core dtype | ldp-core ms | PyTorch f32 ms | onnxruntime f32 ms | "
           "onnxruntime int8 ms | PyTorch / ours | onnxruntime f32 / ours | "
           "ours rel L2 vs PyTorch f32 |")
    lines = [hdr, "|" + "---|" * 9]
    cpu_lines = ["| model | ldp-core dtype | ldp-core | PyTorch f32 | onnxruntime f32 | onnxruntime int8 | "
                 "PyTorch / ours | onnxruntime f32 / ours |",
                 "|" + "---|" * 8]
    fmt = lambda t, k="median_ms": "—" if t is None else f"{t[k]:.1f}"
    ratio = lambda t, o, k="median_ms": "—" if t is None else f"{t[k] / o[k]:.2f}"
    for name, dt, ours, tt, to, t8 in rows:
        lines.append(f"| {name} | {dt} | {fmt(ours)} | {fmt(tt)} | {fmt(to)} | {fmt(t8)} | "
                     f"{ratio(tt, ours)} | {ratio(to, ours)} | {ours['rel_l2']:.1e} |")
        k = "cpu_min_ms"
        cpu_lines.append(f"| {name} | {dt} | {fmt(ours, k)} | {fmt(tt, k)} | {fmt(to, k)} | {fmt(t8, k)} | "
                         f"{ratio(tt, ours, k)} | {ratio(to, ours, k)} |")
    text = ("Median wall time per forward pass, single thread, "
            f"{args.runs} runs after {args.warmup} warm-up runs:\n\n" + "\n".join(lines) +
            "\n\nMinimum thread CPU time (ms) over the same runs (the least disturbed run; "
            "steadiest on a shared machine):\n\n" + "\n".join(cpu_lines) + "\n")
    print()
    print(text)
    try:
        load = open("/proc/loadavg").read().split()[:3]
        print(f"load average during the run: {' '.join(load)}")
    except OSError:
        pass
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
