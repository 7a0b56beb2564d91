#!/usr/bin/env python3
"""Time ldp-core against PyTorch and onnxruntime on the same weights.

    python3 tools/bench/compare.py                      # all three models, f32 + int8
    python3 tools/bench/compare.py --models ldp --runs 20 --dtypes f32,f16,int8
    python3 tools/bench/compare.py --threads 1,2 --x86 native,avx2 --cli-batch 48
    python3 tools/bench/compare.py --models ldp --runs 60 --rounds 6   # engines interleaved

For each model (the seed `ldp` 128->128 on [1,128,64,64]; MobileVLM V1 and V2 1024->2048 on
576 tokens) it builds the PyTorch module exactly as tools/golden/gen_golden.py does (its
builders are imported), saves the weights as safetensors, an input and a small calibration set
as .npy, then times

* PyTorch f32 eager (`torch.set_num_threads(1)`, `torch.inference_mode()`);
* onnxruntime f32 (the module exported with `torch.onnx.export`, `intra_op_num_threads=1`,
  `inter_op_num_threads=1`, all graph optimizations), onnxruntime int8 (the same ONNX
  model through `onnxruntime.quantization.quantize_dynamic`, when available) and onnxruntime
  static int8 (`quantize_static`, QDQ format, per-channel int8 weights, activations `--ort-act`
  (u8 default, or s8), calibrated on the same 4 samples as ours);
* ldp-core (`host-tests/examples/bench_model.rs`, built here with `cargo build --release`)
  on the same safetensors and input, in each requested dtype; its f32 output is checked
  against PyTorch's (relative L2 error).

`--threads 1,2` repeats everything with that many threads for every engine
(`torch.set_num_threads`, onnxruntime `intra_op_num_threads`, `bench_model --threads`).
`--x86 native,avx2` runs ours with the best kernels of the CPU and again with the AVX2 ones
forced (`LDP_X86=avx2`; `avx512` = AVX-512 and VNNI without AMX). With `avx2` among the levels
on an x86-64 host, PyTorch is also timed with its AVX2 code forced, in a worker process of this
script started with `MKL_ENABLE_INSTRUCTIONS=AVX2`, `ONEDNN_MAX_CPU_ISA=AVX2` and
`ATEN_CPU_CAPABILITY=avx2` (the stand-in for an AVX2-only machine: the forced-AVX2 rows compare
against it; onnxruntime's kernels have no such switch, so its columns stay native). `--cli-batch N` also times ours the way a user runs it,
`ldp-quant run --threads T` on a batch of N samples and on 1 sample (the same blob), as
`(T(N) - T(1)) / (N - 1)` per sample (from the median and from the minimum wall time of
`--cli-runs` runs each, the two batch sizes in turn: file I/O and layout conversion included;
the range of the runs' own estimates is printed beside them: on a shared 2-vCPU VM a batch of
12 seed-block samples gave +6 % and +52 % for the same blob, so take N ≥ 48 there). The nominal MACs of the PyTorch module (convolutions and linear
layers, counted with forward hooks) give GMAC/s columns.

Every timing takes `--runs` runs after `--warmup` untimed ones and reports the median wall
time and the minimum thread CPU time (the least disturbed run: the steadiest figure on a
shared machine). `--rounds R` splits the runs into R rounds, and in each round every engine
runs its share in turn (ours from the blob it wrote once, `bench_model --blob`): a slow phase of
a shared machine, which can last seconds, then falls on all engines alike instead of on
whichever ran during it; the medians and minima are over all rounds' runs. Prints a table
with the ratios (their time / ours: > 1 means ldp-core is faster) and, with `--markdown F`,
writes it as Markdown. Exits 0 with a message when torch is not installed (CI does not run it).
"""

import argparse
import gc
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
    return {"wall_ms": wall, "cpu_ms": cpu}


def summary(wall, cpu):
    """Median and minimum of the wall and thread CPU times of all runs (of all rounds)."""
    return {"median_ms": median(wall), "min_ms": min(wall), "cpu_median_ms": median(cpu),
            "cpu_min_ms": min(cpu), "runs": len(wall)}


AVX2_ENV = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
            "ATEN_CPU_CAPABILITY": "avx2"}


def torch_worker(spec):
    """`--torch-worker NAME,THREADS,RUNS,WARMUP,SEED,X_PATH`: time PyTorch eager on one model
    in this process (started with AVX2_ENV) and print the times and the CPU capability as JSON."""
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tools", "golden"))
    import gen_golden as gg
    name, nt, runs, warmup, seed, x_path = spec.split(",", 5)
    arch, c_in, c_out, _, _ = MODELS[name]
    torch.set_num_interop_threads(1)
    torch.set_num_threads(int(nt))
    model = gg.build_module(arch, c_in, c_out, int(seed)).float().eval()
    xt = torch.from_numpy(np.load(x_path))
    with torch.inference_mode():
        t = time_fn(lambda: model(xt), int(runs), int(warmup))
    t["capability"] = torch.backends.cpu.get_cpu_capability()
    print(json.dumps(t))
    return 0


def time_torch_avx2(name, nt, runs, warmup, seed, x_path):
    """One round of PyTorch with its AVX2 code forced (a worker process of this script)."""
    env = dict(os.environ)
    env.update(AVX2_ENV)
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker",
           f"{name},{nt},{runs},{warmup},{seed},{x_path}"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


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


def count_macs(model, xt):
    """Multiply-accumulates of the module's Conv2d and Linear layers on input `xt`."""
    import torch
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            kh, kw = m.kernel_size
            total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, torch.nn.Linear):
            total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        model(xt)
    for h in hs:
        h.remove()
    return total[0]


def build_cli(skip):
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target, "release", "ldp-quant")
    if not skip:
        cmd = ["cargo", "build", "--release", "-p", "ldp-quant"]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found (build it, or drop --skip-build)")
    return exe


def x86_env(level):
    env = dict(os.environ)
    if level != "native":
        env["LDP_X86"] = level
    return env


def time_cli(cli, blob, batch1, batchn, n, threads, level, runs, tmp):
    """Per-sample wall time of `ldp-quant run` on a batch: (T(n) - T(1)) / (n - 1), from the
    medians and from the minima of `runs` runs each, the two batch sizes run in turn (so that
    a slow phase of a shared machine hits both alike)."""
    def once(inp):
        cmd = [cli, "run", "--model", blob, "--input", inp, "-o",
               os.path.join(tmp, "cli_out.npy"), "--threads", str(threads)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=x86_env(level))
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
        return (time.perf_counter() - t0) * 1e3
    t1s, tns = [], []
    for _ in range(runs):
        t1s.append(once(batch1))
        tns.append(once(batchn))
    t1, tn = median(t1s), median(tns)
    # Each run's own estimate (its batch of N against the batch of 1 run just before it): their
    # range says how far the machine's noise moves the figure (N too small when it is wide).
    pairs = sorted((b - a) / (n - 1) for a, b in zip(t1s, tns))
    return {"t1_ms": t1, "tn_ms": tn, "per_sample_ms": (tn - t1) / (n - 1),
            "per_sample_min_ms": (min(tns) - min(t1s)) / (n - 1),
            "per_run_range_ms": (pairs[0], pairs[-1])}


def time_ours(exe, blob, x_path, runs, warmup, threads, level):
    """One round of ours on a blob written before (`bench_model --blob`): every run's times."""
    cmd = [exe, "--blob", blob, "--input", x_path, "--runs", str(runs), "--warmup", str(warmup),
           "--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=x86_env(level))
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    j = json.loads(res.stdout.strip().splitlines()[-1])
    return {"wall_ms": j["wall_ms"], "cpu_ms": j["cpu_ms"], "x86": j.get("x86", "?")}


def run_ours(exe, st, grid, dtype, x_path, calib_path, out_path, runs, warmup, threads=1,
             level="native", blob_out=None):
    # "int8": the default int8 blob (MobileVLM V1: 16-bit activations); "int8a16": 16-bit
    # activations (--activations int16; V1, V2, mlp2x-gelu); "int8a8": int8 activations
    # (--activations int8).
    a16, a8 = dtype == "int8a16", dtype == "int8a8"
    cmd = [exe, "--weights", st, "--grid", grid, "--dtype", "int8" if a16 or a8 else dtype,
           "--input", x_path, "--runs", str(runs), "--warmup", str(warmup), "--output", out_path]
    if dtype in ("int8", "int8a16", "int8a8"):
        cmd += ["--calib", calib_path]
    if a16:
        cmd += ["--activations", "int16"]
    if a8:
        cmd += ["--activations", "int8"]
    cmd += ["--threads", str(threads)]
    if blob_out:
        cmd += ["--blob-out", blob_out]
    res = subprocess.run(cmd, capture_output=True, text=True, env=x86_env(level))
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ldp,mobilevlm-v1,mobilevlm-v2")
    ap.add_argument("--dtypes", default="f32,int8", help="ldp-core dtypes (f32, f16, int8 = the default int8 blob, "
                                                  "int8a16 / int8a8 = int8 weights with 16-bit / int8 "
                                                  "activations)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1,
                    help="split every engine's --runs into this many rounds, all engines timed "
                         "in turn in each round (a slow phase of a shared machine then hits "
                         "them alike); medians and minima over all runs")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--skip-build", action="store_true", help="use the already built binary")
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, for every engine")
    ap.add_argument("--x86", default="native", help="our x86 kernel levels: native, avx512 (VNNI, no AMX), avxvnni (AVX2 + AVX-VNNI), avx2, portable "
                                                    "(comma-separated; LDP_X86)")
    ap.add_argument("--ort-act", default="u8", choices=["u8", "s8"],
                    help="activation type of onnxruntime's static int8 (QDQ) model")
    ap.add_argument("--cli-batch", type=int, default=0,
                    help="also time `ldp-quant run` per sample on a batch of this many (>= 2)")
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("--torch-worker", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help="keep the weights, inputs and outputs in this folder "
                                      "(default: a temporary folder)")
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args.torch_worker)

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

    torch.set_num_interop_threads(1)
    exe = build_binary(args.skip_build)
    cli = build_cli(args.skip_build) if args.cli_batch >= 2 else None
    dtypes = [d for d in args.dtypes.split(",") if d]
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    # Each engine's runs per round (the last round may add a few past --runs).
    rounds = max(1, args.rounds)
    per = max(1, -(-args.runs // rounds))
    levels = [l for l in args.x86.split(",") if l]
    import platform
    torch_avx2 = "avx2" in levels and platform.machine().lower() in ("x86_64", "amd64")
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
            batch_path = None
            if cli is not None:
                batch_path = os.path.join(tmp, f"{name}.batch{args.cli_batch}.npy")
                np.save(batch_path, gg.draw(rng, args.cli_batch, arch, c_in, h, w, "normal"))
            xt = torch.from_numpy(x)
            macs = count_macs(model, xt)
            print(f"== {name}: input {list(x.shape)}, {macs / 1e9:.3f} GMAC (PyTorch module)",
                  flush=True)
            with torch.inference_mode():
                y_ref = model(xt).numpy()

            sessions = {}
            if ort is not None:
                onnx_path = os.path.join(tmp, f"{name}.onnx")
                torch.onnx.export(model, (xt,), onnx_path, opset_version=17,
                                  input_names=["x"], output_names=["y"])
                sessions["f32"] = onnx_path
                try:
                    from onnxruntime.quantization import QuantType, quantize_dynamic

                    q_path = os.path.join(tmp, f"{name}.int8.onnx")
                    quantize_dynamic(onnx_path, q_path, weight_type=QuantType.QInt8)
                    sessions["int8"] = q_path
                except Exception as e:  # quantization tooling is optional
                    print(f"   onnxruntime dynamic int8: skipped ({e})")
                try:
                    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                                          QuantType, quantize_static)

                    class Reader(CalibrationDataReader):
                        def __init__(self, xs):
                            self.it = iter([{"x": xs[i:i + 1]} for i in range(len(xs))])

                        def get_next(self):
                            return next(self.it, None)

                    qs_path = os.path.join(tmp, f"{name}.qdq.onnx")
                    act = QuantType.QUInt8 if args.ort_act == "u8" else QuantType.QInt8
                    quantize_static(onnx_path, qs_path, Reader(calib),
                                    quant_format=QuantFormat.QDQ, per_channel=True,
                                    activation_type=act, weight_type=QuantType.QInt8)
                    sessions["qdq"] = qs_path
                except Exception as e:
                    print(f"   onnxruntime static int8: skipped ({e})")

            for nt in thread_counts:
                torch.set_num_threads(nt)
                # Ours: one blob per dtype and kernel level, written (and its output checked
                # against PyTorch's) once, then timed from the file in every round.
                ours_cfg = []
                for dt in dtypes:
                    for level in levels:
                        out_path = os.path.join(tmp, f"{name}.y_{dt}.npy")
                        blob = os.path.join(tmp, f"{name}.{dt}.{level}.blob")
                        run_ours(exe, st, f"{h}x{w}", dt, x_path, calib_path, out_path, 1, 0,
                                 nt, level, blob)
                        y = np.load(out_path)
                        rel = float(np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref))
                        ours_cfg.append((dt, level, blob, rel))
                times = {}

                def add(key, t):
                    acc = times.setdefault(key, {"wall_ms": [], "cpu_ms": []})
                    acc["wall_ms"] += t["wall_ms"]
                    acc["cpu_ms"] += t["cpu_ms"]
                    if "x86" in t:
                        acc["x86"] = t["x86"]

                rel_ort = {}
                for r in range(rounds):
                    with torch.inference_mode():
                        add("torch", time_fn(lambda: model(xt), per, args.warmup))
                    if torch_avx2:
                        t = time_torch_avx2(name, nt, per, args.warmup, args.seed, x_path)
                        add("torch_avx2", t)
                        times["torch_avx2"]["capability"] = t.get("capability", "?")
                    for key, path in sessions.items():
                        so = ort.SessionOptions()
                        so.intra_op_num_threads = nt
                        so.inter_op_num_threads = 1
                        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                        if key not in rel_ort:
                            yo = sess.run(None, {"x": x})[0]
                            rel_ort[key] = float(np.linalg.norm(yo - y_ref) / np.linalg.norm(y_ref))
                        add("ort_" + key, time_fn(lambda: sess.run(None, {"x": x}), per,
                                                  args.warmup))
                        # Release the session (and its thread pool, whose threads may still
                        # spin) before anything else is timed.
                        del sess
                        gc.collect()
                    for dt, level, blob, _ in ours_cfg:
                        add(("ours", dt, level),
                            time_ours(exe, blob, x_path, per, args.warmup, nt, level))
                t_torch = summary(times["torch"]["wall_ms"], times["torch"]["cpu_ms"])
                print(f"   [{nt} thr] torch f32            {t_torch['median_ms']:9.2f} ms",
                      flush=True)
                peers = {"torch": t_torch}
                if torch_avx2:
                    acc = times["torch_avx2"]
                    peers["torch_avx2"] = summary(acc["wall_ms"], acc["cpu_ms"])
                    print(f"   [{nt} thr] torch f32, AVX2 forced {peers['torch_avx2']['median_ms']:9.2f}"
                          f" ms (ATen capability {acc.get('capability', '?')})", flush=True)
                for key in sessions:
                    t = summary(times["ort_" + key]["wall_ms"], times["ort_" + key]["cpu_ms"])
                    t["rel_l2"] = rel_ort[key]
                    peers["ort_" + key] = t
                    print(f"   [{nt} thr] onnxruntime {key:<8} {t['median_ms']:9.2f} ms "
                          f"(rel L2 vs torch f32 {t['rel_l2']:.1e})", flush=True)
                for dt, level, blob, rel in ours_cfg:
                    acc = times[("ours", dt, level)]
                    ours = summary(acc["wall_ms"], acc["cpu_ms"])
                    ours["x86"] = acc.get("x86", "?")
                    ours["rel_l2"] = rel
                    if cli is not None:
                        ours["cli"] = time_cli(cli, blob, x_path, batch_path, args.cli_batch,
                                               nt, level, args.cli_runs, tmp)
                    cli_s = (f", CLI {ours['cli']['per_sample_ms']:.2f} ms/sample"
                             if cli is not None else "")
                    print(f"   [{nt} thr] ldp-core {dt:<7} {level:<7} {ours['median_ms']:9.2f} ms "
                          f"({ours.get('x86', '?')}; rel L2 vs torch f32 {ours['rel_l2']:.1e}"
                          f"{cli_s})", flush=True)
                    rows.append((name, nt, dt, level, macs, ours, peers))
            torch.set_num_threads(1)

    fmt = lambda t, k="median_ms": "—" if t is None else f"{t[k]:.1f}"
    ratio = lambda t, o, k="median_ms": "—" if t is None else f"{t[k] / o[k]:.2f}"
    gmacs = lambda macs, t, k="median_ms": "—" if t is None else f"{macs / t[k] / 1e6:.0f}"
    hdr = ("| model | threads | ours dtype | ours kernels | ours ms | ours GMAC/s | PyTorch f32 ms | "
           "onnxruntime f32 ms | onnxruntime int8 dyn. ms | onnxruntime int8 static QDQ ms | "
           "best peer f32 / ours | ort static int8 / ours | ours rel L2 vs PyTorch f32 | "
           "PyTorch f32, AVX2 forced ms | PyTorch AVX2 / ours (forced-AVX2 rows) |")
    lines = [hdr, "|" + "---|" * 15]
    cpu_lines = ["| model | threads | ours dtype | ours kernels | ours | PyTorch f32 | onnxruntime f32 | "
                 "onnxruntime int8 dyn. | onnxruntime int8 QDQ | PyTorch f32, AVX2 forced |",
                 "|" + "---|" * 10]
    cli_lines = ["| model | threads | ours dtype | ours kernels | forward ms (in memory) | "
                 "`ldp-quant run` ms/sample | CLI overhead | forward min ms | "
                 "ms/sample from minima | overhead, minima | per-run estimates ms/sample |",
                 "|" + "---|" * 11]
    for name, nt, dt, level, macs, ours, p in rows:
        tt, to, t8, tq = (p.get("torch"), p.get("ort_f32"), p.get("ort_int8"), p.get("ort_qdq"))
        best = min([t for t in (tt, to) if t is not None], key=lambda t: t["median_ms"])
        kern = ours.get("x86", level)
        ta2 = p.get("torch_avx2")
        lines.append(f"| {name} | {nt} | {dt} | {kern} | {fmt(ours)} | {gmacs(macs, ours)} | "
                     f"{fmt(tt)} | {fmt(to)} | {fmt(t8)} | {fmt(tq)} | {ratio(best, ours)} | "
                     f"{ratio(tq, ours)} | {ours['rel_l2']:.1e} | {fmt(ta2)} | "
                     f"{ratio(ta2 if level == 'avx2' else None, ours)} |")
        k = "cpu_min_ms"
        cpu_lines.append(f"| {name} | {nt} | {dt} | {kern} | {fmt(ours, k)} | {fmt(tt, k)} | "
                         f"{fmt(to, k)} | {fmt(t8, k)} | {fmt(tq, k)} | {fmt(ta2, k)} |")
        if "cli" in ours:
            c = ours["cli"]
            cli_lines.append(f"| {name} | {nt} | {dt} | {kern} | {ours['median_ms']:.1f} | "
                             f"{c['per_sample_ms']:.1f} | "
                             f"{(c['per_sample_ms'] / ours['median_ms'] - 1) * 100:+.0f} % | "
                             f"{ours['min_ms']:.1f} | {c['per_sample_min_ms']:.1f} | "
                             f"{(c['per_sample_min_ms'] / ours['min_ms'] - 1) * 100:+.0f} % | "
                             f"{c['per_run_range_ms'][0]:.2f}–{c['per_run_range_ms'][1]:.2f} |")
    how = (f"{per} runs after {args.warmup} warm-up runs" if rounds == 1 else
           f"{rounds} rounds of {per} runs after {args.warmup} warm-up runs each, every engine "
           "timed in turn in each round")
    text = ("Median wall time per forward pass, "
            f"{how}; GMAC/s = MACs of the PyTorch "
            "module / median time:\n\n" + "\n".join(lines) +
            "\n\nMinimum thread CPU time (ms) over the same runs (the calling thread only: "
            "meaningful for 1 thread):\n\n" + "\n".join(cpu_lines) + "\n")
    if len(cli_lines) > 2:
        text += ("\n`ldp-quant run` per sample, (T(batch of "
                 f"{args.cli_batch}) - T(batch of 1)) / {args.cli_batch - 1}, from the medians "
                 f"and from the minima of {args.cli_runs} runs each (the two batches in turn; "
                 "the minima are steadier on a shared machine):\n\n" + "\n".join(cli_lines)
                 + "\n")
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
