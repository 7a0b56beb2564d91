#!/usr/bin/env python3
"""Float simulation of two int8 activation schemes on the golden cases (docs/ACCURACY.md).

It runs the `ldp` and `mobilevlm-v2` golden cases in float64 with per-output-channel symmetric
int8 weights. Every activation the int8 graph quantizes is then quantized symmetrically per
token (per pixel): absmax / 127, round to nearest, clamp to ±127. That is the candidate scheme
for the int8 misses that static per-tensor scales cannot fix. The script prints the relative L2
error of the held-out outputs against PyTorch float64, next to the error of the weights-only
quantization.

Usage:  python3 tools/int8_sim/per_token_sim.py   (needs torch, numpy, safetensors; skips without)
"""
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file
except ImportError as e:  # pragma: no cover
    print(f"skipped: {e} (pip install -r tools/golden/requirements.txt)")
    sys.exit(0)

torch.set_default_dtype(torch.float64)
GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "host-tests", "golden")


def q_token(t):
    """Symmetric int8 per token: t is [1, C, H, W] (token = pixel)."""
    s = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
    return (t / s).round().clamp(-127, 127) * s


def q_weight(w):
    s = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).clamp_min(1e-12) / 127
    return (w / s).round().clamp(-127, 127) * s


def ln_c(x, g, b):
    x = x.permute(0, 2, 3, 1)
    return F.layer_norm(x, (x.shape[-1],), g, b, 1e-5).permute(0, 3, 1, 2)


def ldp(W, x, q, wq):
    co, ci = W["pointwise1.weight"].shape[0], x.shape[1]
    pw = lambda t, n, c_in: F.conv2d(t, wq(W[n + ".weight"]).reshape(co, c_in, 1, 1), W[n + ".bias"])
    dw = lambda t, n, s: F.conv2d(t, wq(W[n + ".weight"]).reshape(co, 1, 3, 3), W[n + ".bias"],
                                  stride=s, padding=1, groups=co)
    x = q(x)
    a = q(F.gelu(q(pw(x, "pointwise1", ci))))
    b = q(q(dw(a, "depthwise1", 1)) + a)
    c = q(F.gelu(q(ln_c(q(pw(b, "pointwise2", co)), W["norm1.weight"], W["norm1.bias"]))))
    e = q(dw(c, "depthwise2", 2))
    r = q(F.interpolate(x if ci == co else a, size=e.shape[2:], mode="bilinear", align_corners=False))
    g = q(pw(q(e + r), "pointwise3", co))
    return q(ln_c(g, W["norm2.weight"], W["norm2.bias"]))


def v2(W, tokens, q, wq):
    n, c_in = tokens.shape
    h = int(round(n ** 0.5))
    grid = lambda t: t.T.reshape(1, -1, h, h) if t.dim() == 2 else t
    lin = lambda t, k: t @ wq(W[k + ".weight"]).reshape(W[k + ".weight"].shape[0], -1).T + W[k + ".bias"]
    qt = lambda t: q(t.T.reshape(1, t.shape[1], n, 1))[0, :, :, 0].T  # tokens [N, C] per token
    x = qt(tokens)
    a = qt(F.gelu(qt(lin(x, "mlp.mlp.0"))))
    m = qt(lin(a, "mlp.mlp.2"))
    c = m.shape[1]
    p = q(F.adaptive_avg_pool2d(m.T.reshape(1, c, h, h), (12, 12)))
    d = q(F.conv2d(p, wq(W["peg.peg.0.weight"]), W["peg.peg.0.bias"], padding=1, groups=c))
    return q(d + p).reshape(c, 144).T


def main():
    ident = lambda t: t
    for case in sorted(os.listdir(GOLDEN)):
        d = os.path.join(GOLDEN, case)
        if not os.path.isdir(d) or case.startswith("v1_") or case == "checkpoints":
            continue
        W = {k: v.double() for k, v in load_file(os.path.join(d, "weights.safetensors")).items()}
        X = torch.tensor(np.load(os.path.join(d, "heldout.npy"))).double()
        E = torch.tensor(np.load(os.path.join(d, "heldout_expected.npy")))
        f = ldp if case.startswith("ldp") else v2
        wrap = (lambda x: x[None]) if case.startswith("ldp") else (lambda x: x)
        cat = torch.cat if case.startswith("ldp") else torch.stack
        per_token = cat([f(W, wrap(x), q_token, q_weight) for x in X])
        weights_only = cat([f(W, wrap(x), ident, q_weight) for x in X])
        rel = lambda y: ((y - E).norm() / E.norm()).item()
        print(f"{case:<22} per-token int8 {rel(per_token):.4f}   weights only {rel(weights_only):.4f}")


if __name__ == "__main__":
    main()
