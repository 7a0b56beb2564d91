#!/usr/bin/env python3
"""Generate the golden test cases the Rust runtime is checked against.

The three projector architectures of docs/ARCHITECTURES.md (`ldp`,
`mobilevlm-v1`, `mobilevlm-v2`) are built as real PyTorch modules -- MobileVLM V1
from torchvision's MobileNetV3 `InvertedResidual` / `SqueezeExcitation` and timm's
`LayerNormAct2d`, the way the official MobileVLM code builds them -- given
non-trivial seeded weights, and run in float64 on seeded inputs.

    pip install -r tools/golden/requirements.txt
    python3 tools/golden/gen_golden.py --out host-tests/golden

Everything is deterministic (per-case seeds derived from the case name), so a re-run
with the pinned versions rewrites byte-identical files. See tools/golden/README.md for
the layout of the output.

Besides writing the files the script checks itself: every case is recomputed by an
independent float64 NumPy implementation of ARCHITECTURES.md (no torch involved) and
must agree with the torch float64 output; the state_dict keys and shapes must be
exactly the ones ARCHITECTURES.md lists.
"""

import argparse
import copy
import inspect
import json
import math
import os
import shutil
import sys
import zlib
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
from torchvision.models.mobilenetv3 import InvertedResidual, InvertedResidualConfig
from torchvision.ops.misc import SqueezeExcitation

try:  # timm >= 0.9
    from timm.layers import LayerNormAct2d
except ImportError:  # older timm, as the official MobileVLM repository uses
    from timm.models.layers import LayerNormAct2d

import timm
import safetensors

# Depthwise 3x3 weights keep PyTorch's default init scaled by this factor, so that
# the depthwise path (default std ~0.19 per tap, ~0.58x gain) is about as strong as
# the identity skip it is added to and a wiring error in it cannot hide.
DW_SCALE = 2.0
HEAVY_SCALE = 20.0
N_CALIB = 8
N_HELDOUT = 4
V2_GRID = 12


def _make_divisible(v, divisor=8, min_value=None):
    """torchvision's channel rounding (copied semantics, used for the key check)."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ----------------------------------------------------------------------------------
# The modules
# ----------------------------------------------------------------------------------


class LDP(nn.Module):
    """The seed's Lightweight Downsample Projection block (ARCHITECTURES.md section 1)."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.pointwise1 = nn.Conv2d(c_in, c_out, 1)
        self.depthwise1 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, groups=c_out)
        self.pointwise2 = nn.Conv2d(c_out, c_out, 1)
        self.norm1 = nn.LayerNorm(c_out)
        self.depthwise2 = nn.Conv2d(c_out, c_out, 3, stride=2, padding=1, groups=c_out)
        self.pointwise3 = nn.Conv2d(c_out, c_out, 1)
        self.norm2 = nn.LayerNorm(c_out)

    @staticmethod
    def _ln(norm, t):  # LayerNorm over channels on channels-last data
        return norm(t.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward(self, x):
        a = F.gelu(self.pointwise1(x))  # steps 1-2
        b = self.depthwise1(a) + a  # steps 3-4
        c = F.gelu(self._ln(self.norm1, self.pointwise2(b)))  # steps 5-7
        e = self.depthwise2(c)  # step 8
        s = x if self.c_in == self.c_out else a
        f = e + F.interpolate(s, size=e.shape[-2:], mode="bilinear", align_corners=False)  # 9
        return self._ln(self.norm2, self.pointwise3(f))  # steps 10-11


def make_ir_config(c, stride):
    """`InvertedResidualConfig(c, 3, c, c, True, "HS", stride, 1, 1)` as MobileVLM calls it,
    passed by name so that a torchvision whose signature moved still gets the same block."""
    params = inspect.signature(InvertedResidualConfig.__init__).parameters
    wanted = dict(
        input_channels=c,
        kernel=3,
        expanded_channels=c,
        out_channels=c,
        use_se=True,
        activation="HS",
        stride=stride,
        dilation=1,
        width_mult=1.0,
    )
    kwargs = {k: v for k, v in wanted.items() if k in params}
    missing = [
        k
        for k, p in params.items()
        if k != "self" and k not in kwargs and p.default is inspect.Parameter.empty
    ]
    if missing:
        raise RuntimeError(f"InvertedResidualConfig wants unknown arguments {missing}: {params}")
    return InvertedResidualConfig(**kwargs)


class MobileVLMv1(nn.Module):
    """MobileVLM's `LDPBlock` (the `model` inside `LDPNetProjector`)."""

    def __init__(self, c_in, c_out):
        super().__init__()
        layer_norm = partial(LayerNormAct2d, act_layer=None)
        se_layer = partial(SqueezeExcitation, scale_activation=nn.Hardsigmoid)
        self.mlp = nn.Sequential(
            nn.Identity(), nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out)
        )
        self.mb_block = nn.Sequential(
            nn.Identity(),
            InvertedResidual(make_ir_config(c_out, 1), layer_norm, se_layer),
            InvertedResidual(make_ir_config(c_out, 2), layer_norm, se_layer),
        )

    def forward(self, x):
        b, num_tokens, _ = x.shape
        h = int(math.sqrt(num_tokens))
        assert h * h == num_tokens
        x = self.mlp(x)
        x = x.permute(0, 2, 1).reshape(b, -1, h, h)
        x = self.mb_block(x)
        return x.flatten(2).permute(0, 2, 1)


class _FeatureIR(nn.Module):  # MobileVLM V2 `mlp`
    def __init__(self, c_in, c_out):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out))

    def forward(self, x):
        return self.mlp(x)


def _tokens_to_grid(x):
    b, n, c = x.shape
    h = int(math.sqrt(n))
    assert h * h == n
    return x.permute(0, 2, 1).reshape(b, c, h, h)


class _TokenDown(nn.Module):  # MobileVLM V2 `dwn`
    def __init__(self, grid):
        super().__init__()
        self.dwn = nn.Sequential(nn.AdaptiveAvgPool2d(grid))

    def forward(self, x):
        return self.dwn(_tokens_to_grid(x)).flatten(2).transpose(1, 2)


class _PosInject(nn.Module):  # MobileVLM V2 `peg`
    def __init__(self, c):
        super().__init__()
        self.peg = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=True, groups=c))

    def forward(self, x):
        g = _tokens_to_grid(x)
        return (self.peg(g) + g).flatten(2).transpose(1, 2)


class MobileVLMv2(nn.Module):
    """MobileVLM V2's `LDPNetV2Projector`."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.mlp = _FeatureIR(c_in, c_out)
        self.dwn = _TokenDown((V2_GRID, V2_GRID))
        self.peg = _PosInject(c_out)

    def forward(self, x):
        return self.peg(self.dwn(self.mlp(x)))


def MLP2xGelu(c_in, c_out):
    """LLaVA's `mlp2x_gelu` projector, as LLaVA's `build_vision_projector` builds it."""
    return nn.Sequential(nn.Linear(c_in, c_out), nn.GELU(), nn.Linear(c_out, c_out))


# ----------------------------------------------------------------------------------
# Expected parameter names and shapes (ARCHITECTURES.md)
# ----------------------------------------------------------------------------------


def expected_keys(arch, c_in, c_out):
    C = c_out
    if arch == "ldp":
        keys = {
            "pointwise1.weight": (C, c_in, 1, 1),
            "pointwise1.bias": (C,),
            "depthwise1.weight": (C, 1, 3, 3),
            "depthwise1.bias": (C,),
            "pointwise2.weight": (C, C, 1, 1),
            "pointwise2.bias": (C,),
            "norm1.weight": (C,),
            "norm1.bias": (C,),
            "depthwise2.weight": (C, 1, 3, 3),
            "depthwise2.bias": (C,),
            "pointwise3.weight": (C, C, 1, 1),
            "pointwise3.bias": (C,),
            "norm2.weight": (C,),
            "norm2.bias": (C,),
        }
    elif arch == "mobilevlm-v1":
        S = _make_divisible(C // 4, 8)
        keys = {
            "mlp.1.weight": (C, c_in),
            "mlp.1.bias": (C,),
            "mlp.3.weight": (C, C),
            "mlp.3.bias": (C,),
        }
        for k in (1, 2):
            p = f"mb_block.{k}.block."
            keys.update(
                {
                    p + "0.0.weight": (C, 1, 3, 3),
                    p + "0.1.weight": (C,),
                    p + "0.1.bias": (C,),
                    p + "1.fc1.weight": (S, C, 1, 1),
                    p + "1.fc1.bias": (S,),
                    p + "1.fc2.weight": (C, S, 1, 1),
                    p + "1.fc2.bias": (C,),
                    p + "2.0.weight": (C, C, 1, 1),
                    p + "2.1.weight": (C,),
                    p + "2.1.bias": (C,),
                }
            )
    elif arch == "mobilevlm-v2":
        keys = {
            "mlp.mlp.0.weight": (C, c_in),
            "mlp.mlp.0.bias": (C,),
            "mlp.mlp.2.weight": (C, C),
            "mlp.mlp.2.bias": (C,),
            "peg.peg.0.weight": (C, 1, 3, 3),
            "peg.peg.0.bias": (C,),
        }
    elif arch == "mlp2x-gelu":
        keys = {"0.weight": (C, c_in), "0.bias": (C,), "2.weight": (C, C), "2.bias": (C,)}
    else:
        raise ValueError(arch)
    return keys


def check_v1_structure(model, c_out):
    """The torchvision block must be: no expansion; DW3x3 (no bias) + LN + Hardswish;
    SE(Hardsigmoid); 1x1 (no bias) + LN; residual only in mb_block.1."""
    for k, stride in ((1, 1), (2, 2)):
        ir = model.mb_block[k]
        blk = ir.block
        assert len(blk) == 3, f"expansion layer present? {blk}"
        dw = blk[0][0]
        assert isinstance(dw, nn.Conv2d) and dw.groups == c_out and dw.kernel_size == (3, 3)
        assert dw.stride == (stride, stride) and dw.padding == (1, 1) and dw.bias is None
        assert isinstance(blk[0][1], LayerNormAct2d) and isinstance(blk[0][1].act, nn.Identity)
        assert abs(blk[0][1].eps - 1e-5) < 1e-12
        assert isinstance(blk[0][2], nn.Hardswish)
        se = blk[1]
        assert isinstance(se, SqueezeExcitation)
        assert isinstance(se.activation, nn.ReLU) and isinstance(se.scale_activation, nn.Hardsigmoid)
        pw = blk[2][0]
        assert pw.kernel_size == (1, 1) and pw.bias is None
        assert isinstance(blk[2][1], LayerNormAct2d) and isinstance(blk[2][1].act, nn.Identity)
        assert len(blk[2]) == 2, "projection must have no activation"
        assert ir.use_res_connect == (k == 1)
        if hasattr(blk[0][1], "_fast_norm"):
            assert not blk[0][1]._fast_norm


# ----------------------------------------------------------------------------------
# Independent float64 NumPy reference (ARCHITECTURES.md, no torch)
# ----------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def np_pw(x, w, b):  # 1x1 conv on NCHW, w [O, I, 1, 1] or [O, I]
    w2 = w.reshape(w.shape[0], -1)
    y = np.einsum("oi,nihw->nohw", w2, x)
    return y + b[None, :, None, None] if b is not None else y


def np_dw3(x, w, b, stride):  # depthwise 3x3, padding 1
    n, c, h, wd = x.shape
    ho, wo = (h - 1) // stride + 1, (wd - 1) // stride + 1
    xp = np.zeros((n, c, h + 2, wd + 2))
    xp[:, :, 1:-1, 1:-1] = x
    y = np.zeros((n, c, ho, wo))
    for ky in range(3):
        for kx in range(3):
            patch = xp[:, :, ky : ky + stride * (ho - 1) + 1 : stride, kx : kx + stride * (wo - 1) + 1 : stride]
            y += w[None, :, 0, ky, kx, None, None] * patch
    return y + b[None, :, None, None] if b is not None else y


def np_ln_c(x, w, b, eps=1e-5):  # LayerNorm over axis 1 (channels) of NCHW
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w[None, :, None, None] + b[None, :, None, None]


def bilinear_matrix(n_in, n_out):  # align_corners=False, no antialias
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for o in range(n_out):
        src = max(scale * (o + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[o, i0] += 1.0 - lam
        m[o, i1] += lam
    return m


def adaptive_avg_matrix(n_in, n_out):
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        s = (o * n_in) // n_out
        e = -((-(o + 1) * n_in) // n_out)  # ceil
        m[o, s:e] = 1.0 / (e - s)
    return m


def np_ldp(p, x):
    c_in, c_out = x.shape[1], p["pointwise1.weight"].shape[0]
    h, w = x.shape[2:]
    a = np_gelu(np_pw(x, p["pointwise1.weight"], p["pointwise1.bias"]))
    b = np_dw3(a, p["depthwise1.weight"], p["depthwise1.bias"], 1) + a
    q = np_pw(b, p["pointwise2.weight"], p["pointwise2.bias"])
    c = np_gelu(np_ln_c(q, p["norm1.weight"], p["norm1.bias"]))
    e = np_dw3(c, p["depthwise2.weight"], p["depthwise2.bias"], 2)
    h2, w2 = -(-h // 2), -(-w // 2)
    assert e.shape[2:] == (h2, w2)
    s = x if c_in == c_out else a
    rs = np.einsum("ph,nchw,qw->ncpq", bilinear_matrix(h, h2), s, bilinear_matrix(w, w2))
    g = np_pw(e + rs, p["pointwise3.weight"], p["pointwise3.bias"])
    return np_ln_c(g, p["norm2.weight"], p["norm2.bias"])


def np_grid(t):  # tokens [n, N, C] -> [n, C, h, h]
    n, N, C = t.shape
    h = math.isqrt(N)
    return t.transpose(0, 2, 1).reshape(n, C, h, h)


def np_tokens(g):
    n, C = g.shape[:2]
    return g.reshape(n, C, -1).transpose(0, 2, 1)


def np_v1(p, x):
    t = np_gelu(x @ p["mlp.1.weight"].T + p["mlp.1.bias"]) @ p["mlp.3.weight"].T + p["mlp.3.bias"]
    g = np_grid(t)
    for k, stride in ((1, 1), (2, 2)):
        q = f"mb_block.{k}.block."
        y = np_ln_c(np_dw3(g, p[q + "0.0.weight"], None, stride), p[q + "0.1.weight"], p[q + "0.1.bias"])
        y = y * np.clip(y + 3.0, 0.0, 6.0) / 6.0  # hardswish
        m = y.mean(axis=(2, 3))  # [n, C]
        s = np.maximum(m @ p[q + "1.fc1.weight"][:, :, 0, 0].T + p[q + "1.fc1.bias"], 0.0)
        s = s @ p[q + "1.fc2.weight"][:, :, 0, 0].T + p[q + "1.fc2.bias"]
        s = np.clip(s + 3.0, 0.0, 6.0) / 6.0  # hardsigmoid
        y = y * s[:, :, None, None]
        y = np_ln_c(np_pw(y, p[q + "2.0.weight"], None), p[q + "2.1.weight"], p[q + "2.1.bias"])
        g = y + g if k == 1 else y
    return np_tokens(g)


def np_v2(p, x):
    t = np_gelu(x @ p["mlp.mlp.0.weight"].T + p["mlp.mlp.0.bias"])
    t = t @ p["mlp.mlp.2.weight"].T + p["mlp.mlp.2.bias"]
    g = np_grid(t)
    pm = adaptive_avg_matrix(g.shape[2], V2_GRID)
    z = np.einsum("ph,nchw,qw->ncpq", pm, g, pm)
    z = np_dw3(z, p["peg.peg.0.weight"], p["peg.peg.0.bias"], 1) + z
    return np_tokens(z)


def np_mlp(p, x):
    t = np_gelu(x @ p["0.weight"].T + p["0.bias"])
    return t @ p["2.weight"].T + p["2.bias"]


NP_REF = {"ldp": np_ldp, "mobilevlm-v1": np_v1, "mobilevlm-v2": np_v2, "mlp2x-gelu": np_mlp}


# ----------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------

# (name, arch, c_in, c_out, h, w, dist)
CASES = [
    ("ldp_c16_8x8", "ldp", 16, 16, 8, 8, "normal"),
    ("ldp_c8to24_7x9", "ldp", 8, 24, 7, 9, "normal"),  # C_in != C_out: skip 2 resizes a
    ("ldp_c12_1x1", "ldp", 12, 12, 1, 1, "normal"),
    ("ldp_c6to10_5x3", "ldp", 6, 10, 5, 3, "normal"),
    ("ldp_c16_16x16", "ldp", 16, 16, 16, 16, "normal"),
    ("ldp_c16_16x16_heavy", "ldp", 16, 16, 16, 16, "heavy"),
    ("ldp_c16to24_11x13", "ldp", 16, 24, 11, 13, "normal"),
    ("v1_32to64_h6", "mobilevlm-v1", 32, 64, 6, 6, "normal"),
    ("v1_24to48_h7", "mobilevlm-v1", 24, 48, 7, 7, "normal"),  # odd h
    ("v1_16to32_h1", "mobilevlm-v1", 16, 32, 1, 1, "normal"),  # 1x1 grid
    ("v1_16to32_h12", "mobilevlm-v1", 16, 32, 12, 12, "normal"),  # 144 tokens
    ("v1_16to32_h12_heavy", "mobilevlm-v1", 16, 32, 12, 12, "heavy"),
    ("v1_64to128_h5", "mobilevlm-v1", 64, 128, 5, 5, "normal"),  # widest, S = 32
    ("v2_32to64_h6", "mobilevlm-v2", 32, 64, 6, 6, "normal"),  # h < 12: pool repeats
    ("v2_8to16_h13", "mobilevlm-v2", 8, 16, 13, 13, "normal"),  # overlapping bins
    ("v2_8to16_h1", "mobilevlm-v2", 8, 16, 1, 1, "normal"),
    ("v2_8to16_h24", "mobilevlm-v2", 8, 16, 24, 24, "normal"),  # 576 tokens
    ("v2_8to16_h24_heavy", "mobilevlm-v2", 8, 16, 24, 24, "heavy"),
    ("v2_16to8_h12", "mobilevlm-v2", 16, 8, 12, 12, "normal"),  # C_in > C_out
    ("mlp_32to64_h6", "mlp2x-gelu", 32, 64, 6, 6, "normal"),
    ("mlp_24to40_5x7", "mlp2x-gelu", 24, 40, 5, 7, "normal"),  # 35 tokens, a 5x7 grid
    ("mlp_16to24_h1", "mlp2x-gelu", 16, 24, 1, 1, "normal"),  # one token
    ("mlp_48to96_h12", "mlp2x-gelu", 48, 96, 12, 12, "normal"),  # 144 tokens
    ("mlp_32to64_h12_heavy", "mlp2x-gelu", 32, 64, 12, 12, "heavy"),
]
# (sizes are kept small so that host-tests/golden stays under 4 MB: the float64
# outputs of 4 held-out samples and the 8-sample calibration batch dominate)

BUILDERS = {"ldp": LDP, "mobilevlm-v1": MobileVLMv1, "mobilevlm-v2": MobileVLMv2, "mlp2x-gelu": MLP2xGelu}


def case_seed(name):
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def build_module(arch, c_in, c_out, seed):
    torch.manual_seed(seed)
    model = BUILDERS[arch](c_in, c_out)  # PyTorch default init from the seeded global RNG
    gen = torch.Generator().manual_seed(seed + 1)

    def randn(t):
        return torch.randn(t.shape, generator=gen, dtype=torch.float32)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):  # includes timm's LayerNormAct2d
                m.weight.copy_(1.0 + 0.2 * randn(m.weight))
                m.bias.copy_(0.1 * randn(m.bias))
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                if m.bias is not None:
                    m.bias.copy_(0.1 * randn(m.bias))
                if isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.out_channels:
                    m.weight.mul_(DW_SCALE)
    model.eval()
    return model


def param_dict(model):
    """The state_dict restricted to parameters (no buffers), float32, contiguous."""
    names = {n for n, _ in model.named_parameters()}
    sd = model.state_dict()
    assert set(sd) == names, f"unexpected buffers: {set(sd) - names}"
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sd.items()}


def sample_shape(arch, c_in, h, w):
    return (c_in, h, w) if arch == "ldp" else (h * w, c_in)


def draw(rng, n, arch, c_in, h, w, dist):
    shape = (n,) + sample_shape(arch, c_in, h, w)
    if dist == "normal":
        x = rng.standard_normal(shape)
    elif dist == "heavy":
        x = rng.standard_t(3, size=shape)
        for ch in heavy_channels(c_in):
            if arch == "ldp":
                x[:, ch] *= HEAVY_SCALE
            else:
                x[..., ch] *= HEAVY_SCALE
    else:
        raise ValueError(dist)
    return x.astype(np.float32)


def heavy_channels(c_in):
    return sorted({1, c_in // 2})


def run(model, x, dtype):
    m = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        return m(torch.from_numpy(np.ascontiguousarray(x)).to(dtype)).numpy()


def rel_l2(a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def save_npy(path, arr, dtype):
    np.save(path, np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<")), allow_pickle=False)


def save_st(path, tensors, metadata=None):
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=metadata or {"format": "pt"})
    os.chmod(path, 0o644)


def model_from_params(arch, c_in, c_out, params, dtype=torch.float64):
    m = BUILDERS[arch](c_in, c_out)
    m.load_state_dict({k: v.to(torch.float32) for k, v in params.items()}, strict=True)
    return m.eval().to(dtype)


def gen_case(out, spec, printed_archs):
    name, arch, c_in, c_out, h, w, dist = spec
    if arch in ("mobilevlm-v1", "mobilevlm-v2"):
        assert h == w
    if arch == "mobilevlm-v1":
        assert c_out % 8 == 0
    seed = case_seed(name)
    model = build_module(arch, c_in, c_out, seed)
    if arch == "mobilevlm-v1":
        check_v1_structure(model, c_out)
    params = param_dict(model)

    want = expected_keys(arch, c_in, c_out)
    got = {k: tuple(v.shape) for k, v in params.items()}
    if got != want:
        raise SystemExit(f"{name}: state_dict keys/shapes differ from ARCHITECTURES.md:\n got {got}\n want {want}")
    if arch not in printed_archs:
        printed_archs.add(arch)
        print(f"  state_dict of {arch} (c_in={c_in}, c_out={c_out}): keys match ARCHITECTURES.md")
        for k, v in params.items():
            print(f"    {k:32s} {list(v.shape)}")

    rng = np.random.default_rng(seed)
    x = draw(rng, 1, arch, c_in, h, w, dist)
    calib = draw(rng, N_CALIB, arch, c_in, h, w, dist)
    held = draw(rng, N_HELDOUT, arch, c_in, h, w, dist)

    y64 = run(model, x, torch.float64)
    y32 = run(model, x, torch.float32)
    err32 = rel_l2(y32.astype(np.float64), y64)
    held64 = np.concatenate([run(model, held[i : i + 1], torch.float64) for i in range(N_HELDOUT)])

    if arch == "ldp":
        h2, w2 = -(-h // 2), -(-w // 2)
        out_shape = (1, c_out, h2, w2)
    elif arch == "mobilevlm-v1":
        out_shape = (1, (-(-h // 2)) ** 2, c_out)
    elif arch == "mlp2x-gelu":
        out_shape = (1, h * w, c_out)
    else:
        out_shape = (1, V2_GRID * V2_GRID, c_out)
    assert y64.shape == out_shape, (y64.shape, out_shape)
    assert held64.shape == (N_HELDOUT,) + out_shape[1:]

    # independent NumPy float64 cross-check (input and held-out samples)
    p64 = {k: v.numpy().astype(np.float64) for k, v in params.items()}
    ref = NP_REF[arch](p64, x.astype(np.float64))
    ref_h = NP_REF[arch](p64, held.astype(np.float64))
    np_diff = max(float(np.abs(ref - y64).max()), float(np.abs(ref_h - held64).max()))
    scale = max(1.0, float(np.abs(y64).max()), float(np.abs(held64).max()))
    if np_diff > 1e-12 * scale:
        raise SystemExit(f"{name}: NumPy reference disagrees with torch float64 by {np_diff:.3e}")

    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    save_st(os.path.join(d, "weights.safetensors"), params)
    save_npy(os.path.join(d, "input.npy"), x, np.float32)
    save_npy(os.path.join(d, "expected.npy"), y64, np.float64)
    save_npy(os.path.join(d, "calib.npy"), calib, np.float32)
    save_npy(os.path.join(d, "heldout.npy"), held, np.float32)
    save_npy(os.path.join(d, "heldout_expected.npy"), held64, np.float64)
    meta = {
        "arch": arch,
        "c_in": c_in,
        "c_out": c_out,
        "h": h,
        "w": w,
        "squeeze": _make_divisible(c_out // 4, 8) if arch == "mobilevlm-v1" else None,
        "dist": dist,
        "torch_f32_rel_l2": err32,
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(
        f"  {name:22s} {arch:13s} in {list(x.shape)!s:16s} out {list(y64.shape)!s:16s} "
        f"out_std {y64.std():8.4f}  f32_rel_l2 {err32:.2e}  numpy_max_abs_diff {np_diff:.1e}"
    )
    return {"spec": spec, "params": params, "x": x, "y64": y64, "np_diff": np_diff}


def unrelated_tensors(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "model.embed_tokens.weight": (50, 64),
        "model.layers.0.self_attn.q_proj.weight": (64, 64),
        "lm_head.weight": (50, 64),
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight": (8, 3, 4, 4),
    }
    return {k: (0.02 * torch.randn(s, generator=g)).to(dtype) for k, s in shapes.items()}


def gen_checkpoints(out, results):
    d = os.path.join(out, "checkpoints")
    os.makedirs(d, exist_ok=True)

    # v1: full f32 checkpoint layout, prefix model.mm_projector.model.
    r = results["v1_32to64_h6"]
    t = {"model.mm_projector.model." + k: v for k, v in r["params"].items()}
    t.update(unrelated_tensors(101, torch.float32))
    save_st(os.path.join(d, "v1_whole.safetensors"), t)

    # v2: bf16 checkpoint, prefix model.mm_projector.
    r = results["v2_32to64_h6"]
    _, arch, c_in, c_out, *_ = r["spec"]
    bf = {k: v.to(torch.bfloat16) for k, v in r["params"].items()}
    t = {"model.mm_projector." + k: v for k, v in bf.items()}
    t.update(unrelated_tensors(102, torch.bfloat16))
    save_st(os.path.join(d, "v2_whole_bf16.safetensors"), t)
    m = model_from_params(arch, c_in, c_out, bf)
    y = run(m, r["x"], torch.float64)
    save_npy(os.path.join(d, "v2_whole_bf16_expected.npy"), y, np.float64)
    print(f"  v2_whole_bf16: rel_l2 vs f32-weight expected {rel_l2(y, r['y64']):.2e}")

    # ldp: f16 weights, no prefix
    r = results["ldp_c16_8x8"]
    _, arch, c_in, c_out, *_ = r["spec"]
    hf = {k: v.to(torch.float16) for k, v in r["params"].items()}
    save_st(os.path.join(d, "ldp_f16.safetensors"), hf)
    m = model_from_params(arch, c_in, c_out, hf)
    y = run(m, r["x"], torch.float64)
    save_npy(os.path.join(d, "ldp_f16_expected.npy"), y, np.float64)
    print(f"  ldp_f16: rel_l2 vs f32-weight expected {rel_l2(y, r['y64']):.2e}")

    # ldp: pointwise weights in the Linear shape [O, I]
    t = {}
    for k, v in r["params"].items():
        if k.startswith("pointwise") and k.endswith(".weight"):
            v = v.reshape(v.shape[0], v.shape[1])
        t[k] = v
    save_st(os.path.join(d, "ldp_linear_shapes.safetensors"), t)


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="host-tests/golden", help="output folder")
    args = ap.parse_args()

    torch.set_num_threads(1)  # also makes the f32 runs (meta.json) reproducible
    torch.use_deterministic_algorithms(True)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
        f"safetensors {safetensors.__version__}, numpy {np.__version__}"
    )
    print(f"InvertedResidualConfig{inspect.signature(InvertedResidualConfig.__init__)}")

    out = args.out
    os.makedirs(out, exist_ok=True)
    names = [c[0] for c in CASES]
    for n in names + ["checkpoints"]:  # re-runnable: replace what this script owns
        p = os.path.join(out, n)
        if os.path.isdir(p):
            shutil.rmtree(p)

    printed = set()
    results = {}
    for spec in CASES:
        results[spec[0]] = gen_case(out, spec, printed)
    gen_checkpoints(out, results)
    # gen_checkpoints.py owns more fixtures in checkpoints/ (removed above): write them again.
    import subprocess

    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_checkpoints.py")], check=True)

    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(names, f, indent=2)
        f.write("\n")

    worst = max(r["np_diff"] for r in results.values())
    print(f"NumPy float64 reference agrees with torch float64 on every case (worst max abs diff {worst:.1e})")
    d = results["ldp_c8to24_7x9"]["np_diff"]
    assert d <= 1e-12
    print(f"ldp_c8to24_7x9 NumPy check: max abs diff {d:.1e} (<= 1e-12)")
    total = dir_size(out) - dir_size(os.path.join(out, "sweep"))  # the sweep has its own script
    print(f"total size of {out}: {total} bytes ({total / 2**20:.2f} MiB)")
    if total >= 4 * 10**6:
        print("WARNING: over the 4 MB budget", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
