#!/usr/bin/env python3
"""Generate the checkpoint-format fixtures of the import tests (issue 17).

Writes, into host-tests/golden/checkpoints/, small files laid out the way MobileVLM users hold
their checkpoints, written with the real libraries:

* `v1_whole_bf16.bin`: `torch.save` of a BF16 whole-model state dict, projector under
  `model.mm_projector.model.` next to unrelated LLM keys; one projector weight is stored as a
  non-contiguous (transposed-storage) view and two biases share one storage (offset > 0).
* `v2_sharded/`: a model directory like the official 7B release — `config.json`
  (`mm_projector_type` `ldpnetv2`), `pytorch_model.bin.index.json` and two BF16 shards, the
  projector (`model.mm_projector.*`) in the last one.
* `v1_mm_projector_fp16.bin`: what `tune_mm_mlp_adapter` saves (the projector alone, FP16).
* `mmproj_v1_f16.gguf`, `mmproj_v2_f16.gguf`: llama.cpp mmproj files written with the `gguf`
  package under llama.cpp's names (`mm.model.*`), with its dtypes (f16 matrices and
  convolutions, f32 vectors), squeezed convolution shapes, `clip.projector_type`,
  `clip.vision.image_size/patch_size` (14·h / 14 = the golden case's h x h token grid), a few dummy `v.*` encoder
  tensors; the V2 file uses `general.alignment` 64.
* `mmproj_mlp.gguf`: LLaVA's `mlp2x_gelu` projector as llama.cpp writes it (projector type
  `mlp`, tensors `mm.0.*` and `mm.2.*`), from the golden case `mlp_32to64_h6`.
* `mmproj_resampler.gguf`: a projector type the runtime does not run.
* `malicious_system.bin`, `malicious_p4.bin`: zip archives shaped like `torch.save` whose
  `data.pkl` calls `os.system` (protocol 2 `GLOBAL` and protocol 4 `STACK_GLOBAL`), built with
  a custom `__reduce__`; they are never loaded here.
* `corrupt_*`: small truncated and corrupted variants (the tests derive more).

Each good fixture has `<name>_expected.npy`: the float64 output of the PyTorch module of
tools/golden/gen_golden.py run on the golden case's `input.npy` with the weights *as stored*
(bf16/f16-rounded). The weights come from the golden cases' `weights.safetensors`.

    python3 tools/golden/gen_checkpoints.py --golden host-tests/golden

Run it after gen_golden.py, which replaces the whole checkpoints/ folder. A re-run rewrites
byte-identical files.
"""

import argparse
import collections
import importlib.metadata
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_golden as gg  # noqa: E402  (module classes, model_from_params, run, save_npy)

import gguf  # noqa: E402


def case(golden, name):
    d = os.path.join(golden, name)
    meta = json.load(open(os.path.join(d, "meta.json")))
    params = load_file(os.path.join(d, "weights.safetensors"))
    x = np.load(os.path.join(d, "input.npy"))
    return meta, params, x


def expected(meta, stored, x):
    """float64 reference from the weights as stored (any float dtype, any shape that reshapes)."""
    full = gg.model_from_params(meta["arch"], meta["c_in"], meta["c_out"], stored)
    return gg.run(full, x, torch.float64)


def unrelated(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "model.embed_tokens.weight": (20, 16),
        "model.layers.0.self_attn.q_proj.weight": (16, 16),
        "model.layers.0.mlp.down_proj.weight": (16, 24),
        "lm_head.weight": (20, 16),
        "model.vision_tower.vision_tower.vision_model.embeddings.patch_embedding.weight": (4, 3, 2, 2),
    }
    return {k: (0.02 * torch.randn(s, generator=g)).to(dtype) for k, s in shapes.items()}


def tsave(obj, path):
    torch.save(obj, path)
    os.chmod(path, 0o644)


def write_v1_whole(d, golden):
    meta, p, x = case(golden, "v1_16to32_h1")
    bf = {k: v.to(torch.bfloat16) for k, v in p.items()}
    sd = collections.OrderedDict()
    sd.update(unrelated(201, torch.bfloat16))
    pre = "model.mm_projector.model."
    for k, v in bf.items():
        sd[pre + k] = v
    # A non-contiguous view: the same values, stored transposed (strides (1, C)).
    w = bf["mlp.3.weight"]
    sd[pre + "mlp.3.weight"] = w.t().contiguous().t()
    assert not sd[pre + "mlp.3.weight"].is_contiguous()
    # Two biases sharing one storage: the second has a storage offset.
    b1, b3 = bf["mlp.1.bias"], bf["mlp.3.bias"]
    shared = torch.cat([b1, b3])
    sd[pre + "mlp.1.bias"] = shared[: b1.numel()]
    sd[pre + "mlp.3.bias"] = shared[b1.numel():]
    assert sd[pre + "mlp.3.bias"].storage_offset() == b1.numel()
    tsave(sd, os.path.join(d, "v1_whole_bf16.bin"))
    y = expected(meta, bf, x)
    gg.save_npy(os.path.join(d, "v1_whole_bf16_expected.npy"), y, np.float64)
    return meta, bf, x


def write_v2_sharded(d, golden):
    meta, p, x = case(golden, "v2_8to16_h13")
    bf = {k: v.to(torch.bfloat16) for k, v in p.items()}
    sub = os.path.join(d, "v2_sharded")
    os.makedirs(sub, exist_ok=True)
    llm = unrelated(202, torch.bfloat16)
    names = list(llm)
    shard1 = collections.OrderedDict((k, llm[k]) for k in names[:3])
    shard2 = collections.OrderedDict((k, llm[k]) for k in names[3:])
    for k, v in bf.items():
        shard2["model.mm_projector." + k] = v
    files = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    weight_map = {}
    total = 0
    for f, sd in zip(files, [shard1, shard2]):
        tsave(sd, os.path.join(sub, f))
        for k, v in sd.items():
            weight_map[k] = f
            total += v.numel() * v.element_size()
    with open(os.path.join(sub, "pytorch_model.bin.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)
        fh.write("\n")
    config = {
        "architectures": ["MobileLlamaForCausalLM"],
        "model_type": "mobilevlm",
        "hidden_size": meta["c_out"],
        "mm_hidden_size": meta["c_in"],
        "mm_projector_type": "ldpnetv2",
        "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "mm_vision_select_layer": -2,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(sub, "config.json"), "w") as fh:
        json.dump(config, fh, indent=2)
        fh.write("\n")
    y = expected(meta, bf, x)
    gg.save_npy(os.path.join(d, "v2_bf16_expected.npy"), y, np.float64)


def write_mm_projector(d, golden):
    meta, p, x = case(golden, "v1_16to32_h1")
    hf = {k: v.to(torch.float16) for k, v in p.items()}
    sd = collections.OrderedDict(("model.mm_projector.model." + k, v) for k, v in hf.items())
    tsave(sd, os.path.join(d, "v1_mm_projector_fp16.bin"))
    y = expected(meta, hf, x)
    gg.save_npy(os.path.join(d, "v1_mm_projector_fp16_expected.npy"), y, np.float64)


def gguf_name(arch, k):
    """llama.cpp's get_tensor_name for the projector: model.mm_projector → mm, then
    mm.mlp.mlp → mm.model.mlp and mm.peg.peg → mm.model.peg (V1 keys already hold `.model.`)."""
    if arch == "mobilevlm-v1":
        return "mm.model." + k
    if arch == "mlp2x-gelu":  # Sequential index N -> mm.N
        return "mm." + k
    return "mm.model." + k.replace("mlp.mlp.", "mlp.", 1).replace("peg.peg.", "peg.", 1)


def write_gguf(path, ptype, tensors, meta=None, alignment=None, vision=True, grid=24):
    w = gguf.GGUFWriter(path, arch="clip")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_string("clip.projector_type", ptype)
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_uint32("clip.vision.image_size", 14 * grid)
    w.add_uint32("clip.vision.patch_size", 14)
    if meta is not None:
        w.add_uint32("clip.vision.embedding_length", meta["c_in"])
    w.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    w.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    for name, arr in tensors:
        w.add_tensor(name, arr)
    if vision:
        g = np.random.default_rng(7)
        w.add_tensor("v.patch_embd.weight", g.standard_normal((2, 3, 14, 14)).astype(np.float16))
        w.add_tensor("v.position_embd.weight", g.standard_normal((5, 8)).astype(np.float32))
        w.add_tensor("v.blk.0.attn_q.weight", g.standard_normal((8, 8)).astype(np.float16))
        w.add_tensor("v.blk.0.attn_q.bias", g.standard_normal((8,)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.chmod(path, 0o644)


def write_mmproj(d, golden, case_name, fname, alignment=None, expected_name=None):
    """An mmproj file converted from a BF16 checkpoint, as llama.cpp does from the official
    releases: the BF16 values cast to f16 (matrices, convolutions) or f32 (vectors). When every
    BF16 value is exact in f16 the reference equals the BF16 one and `expected_name` (that
    reference's file) is reused instead of writing a copy."""
    meta, p, x = case(golden, case_name)
    p = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in p.items()}
    tensors = []
    stored = {}
    exact = True
    for k, v in p.items():
        # llama.cpp: 2-D and 4-D tensors squeezed and stored f16, the others f32.
        if v.ndim in (2, 4):
            a = v.squeeze().numpy().astype(np.float16)
        else:
            a = v.squeeze().numpy().astype(np.float32)
        tensors.append((gguf_name(meta["arch"], k), a))
        stored[k] = torch.from_numpy(a.astype(np.float32)).reshape(v.shape)
        exact = exact and torch.equal(stored[k], v)
    ptype = {"mobilevlm-v1": "ldp", "mobilevlm-v2": "ldpv2", "mlp2x-gelu": "mlp"}[meta["arch"]]
    write_gguf(os.path.join(d, fname), ptype, tensors, meta, alignment, grid=meta["h"])
    y = expected(meta, stored, x)
    if expected_name is not None:
        assert exact, f"{fname}: a BF16 weight is not exact in f16; write its own reference"
        ref = np.load(os.path.join(d, expected_name))
        assert np.array_equal(ref, y), f"{fname}: reference differs from {expected_name}"
        print(f"  {fname}: weights exact in f16, reference = {expected_name}")
    else:
        gg.save_npy(os.path.join(d, fname.replace(".gguf", "_expected.npy")), y, np.float64)


def write_other_gguf(d):
    g = np.random.default_rng(3)
    res = [("resampler.query", g.standard_normal((4, 8)).astype(np.float32))]
    write_gguf(os.path.join(d, "mmproj_resampler.gguf"), "resampler", res, vision=False)


class _System:
    """Pickles as a call of os.system (posix.system); never unpickled here."""

    def __reduce__(self):
        return (os.system, ("echo ldp-quant-must-not-run-this > /tmp/ldp_quant_pwned",))


def fake_torch_zip(path, pkl):
    root = os.path.splitext(os.path.basename(path))[0]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in [("data.pkl", pkl), ("byteorder", b"little"), ("version", b"3\n")]:
            z.writestr(zipfile.ZipInfo(f"{root}/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)
    os.chmod(path, 0o644)


def write_malicious(d):
    state = collections.OrderedDict()
    state["model.mm_projector.model.mlp.1.weight"] = _System()
    fake_torch_zip(os.path.join(d, "malicious_system.bin"), pickle.dumps(state, protocol=2))
    fake_torch_zip(os.path.join(d, "malicious_p4.bin"), pickle.dumps({"x": _System()}, protocol=4))
    for f in ("malicious_system.bin", "malicious_p4.bin"):
        with zipfile.ZipFile(os.path.join(d, f)) as z:
            data = [n for n in z.namelist() if n.endswith("data.pkl")][0]
            assert b"system" in z.read(data)


def write_corrupt(d):
    """Small broken files; the tests derive more (cut at every region) from the good fixtures."""
    base = os.path.join(d, "corrupt_base.tmp")
    torch.save({"model.mm_projector.model.mlp.1.weight": torch.ones(2, 2, dtype=torch.float16)}, base)
    src = open(base, "rb").read()
    # Truncated: the end-of-central-directory record is gone.
    open(os.path.join(d, "corrupt_truncated.bin"), "wb").write(src[: len(src) * 2 // 3])
    # One byte inside data.pkl flipped: its CRC no longer matches.
    with zipfile.ZipFile(base) as z:
        info = [i for i in z.infolist() if i.filename.endswith("/data.pkl")][0]
    i = src.index(b"\x80\x02", info.header_offset) + 100
    bad = bytearray(src)
    bad[i] ^= 0x20
    open(os.path.join(d, "corrupt_pickle_crc.bin"), "wb").write(bytes(bad))
    os.remove(base)
    g = open(os.path.join(d, "mmproj_v2_f16.gguf"), "rb").read()
    open(os.path.join(d, "corrupt_truncated.gguf"), "wb").write(g[:300])
    # A tensor count no file could hold (header only).
    huge = bytearray(g[:512])
    huge[8:16] = struct.pack("<Q", 1 << 40)
    open(os.path.join(d, "corrupt_count.gguf"), "wb").write(bytes(huge))
    for f in os.listdir(d):
        if f.startswith("corrupt_"):
            os.chmod(os.path.join(d, f), 0o644)


OWNED = [
    "v1_whole_bf16.bin", "v1_whole_bf16_expected.npy", "v2_bf16_expected.npy",
    "v1_mm_projector_fp16.bin", "v1_mm_projector_fp16_expected.npy",
    "mmproj_v1_f16.gguf", "mmproj_v1_f16_expected.npy", "mmproj_v2_f16.gguf", "mmproj_mlp.gguf",
    "mmproj_mlp_expected.npy", "mmproj_resampler.gguf",
    "malicious_system.bin", "malicious_p4.bin", "corrupt_truncated.bin", "corrupt_pickle_crc.bin",
    "corrupt_truncated.gguf", "corrupt_count.gguf",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--golden", default="host-tests/golden", help="golden folder (cases are read, "
                    "fixtures written to its checkpoints/)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, gguf {importlib.metadata.version('gguf')}, numpy {np.__version__}")
    d = os.path.join(args.golden, "checkpoints")
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):  # re-runnable: replace what this script owns
        if f.startswith("corrupt_"):
            os.remove(os.path.join(d, f))
    if os.path.isdir(os.path.join(d, "v2_sharded")):
        shutil.rmtree(os.path.join(d, "v2_sharded"))
    write_v1_whole(d, args.golden)
    write_v2_sharded(d, args.golden)
    write_mm_projector(d, args.golden)
    write_mmproj(d, args.golden, "v1_16to32_h12", "mmproj_v1_f16.gguf")
    write_mmproj(d, args.golden, "v2_8to16_h13", "mmproj_v2_f16.gguf", alignment=64,
                 expected_name="v2_bf16_expected.npy")
    write_mmproj(d, args.golden, "mlp_32to64_h6", "mmproj_mlp.gguf")
    write_other_gguf(d)
    write_malicious(d)
    write_corrupt(d)
    total = sum(os.path.getsize(os.path.join(d, f)) for f in OWNED if os.path.exists(os.path.join(d, f)))
    total += sum(os.path.getsize(os.path.join(d, "v2_sharded", f)) for f in os.listdir(os.path.join(d, "v2_sharded")))
    print(f"wrote {d}: {total} bytes of fixtures")


if __name__ == "__main__":
    main()
