"""Frozen golden vectors: ``python -m verif.golden_vectors`` (re)writes ``golden/``.

Weight mode: for each configuration of :data:`VECTORS`, one ``.npz`` holds a packed weight
image, the activations and the results ``sqhw.golden.hw_matmul`` gave when the file was
written:

- ``image``    uint8 [bytes]: the memory image (datasheet §4) of W[K, N], N = 2·rows
  (two tiles of R columns), K = k_max;
- ``x``        int16 [M, K]: activation codes, with the extremes -2^(a-1) and 2^(a-1)-1;
- ``expected`` int64 [M, N]: the integer results (datasheet §6);
- ``config``   the HWConfig as canonical JSON (a 0-d unicode array).

Activation mode (``operand="activation"``, datasheet §10): for each configuration of
:data:`ACT_VECTORS`, one ``.npz`` holds what an exact replay needs, K = k_max, N = 2·rows:

- ``mask``        bool [K]: the static activation mask (``calibrate_activation_mask``);
- ``w``           int8 [K, N]: dense INT(weight_bits) weight codes, natural channel order;
- ``col_scale``   float32 [N]: the weights' column scales (host side only);
- ``image``       uint8: the weight stream as the RTL takes it
  (:func:`sqhw.golden.packing.act_weight_image`): per tile of R columns, the mask column
  then R columns of reordered weight records;
- ``x``           int16 [M, K]: activation codes, natural channel order;
- ``scale_high``, ``scale_low`` int16 [M, K/b]: per-token, per-bank scale codes;
- ``token_scale`` float32 [M]: the per-token float scale (host side only);
- ``tokens``      uint8 [M, K/b · beat bytes]: every token's activation beats
  (:func:`sqhw.golden.packing.act_token_image`);
- ``expected``    int64 [M, N]: the integer results of ``hw_matmul_act``;
- ``config``      the HWConfig as canonical JSON.

``golden/MANIFEST.json`` lists every file with its configuration, digest, shapes, seed,
sha256 and the sqhw / torch / numpy versions that wrote it (weight mode under ``vectors``,
activation mode under ``act_vectors``). The ``.npz`` files are written with a fixed zip
timestamp, so regenerating with unchanged code gives identical bytes.

``verif/top/test_golden_vectors.py`` checks that the files match the manifest and that the
current golden model still reproduces them (model drift); the cocotb tests
``frozen_vectors`` in ``verif/top/test_top.py`` and ``act_frozen_vectors`` in
``verif/top/test_top_act.py`` replay them on the RTL of every matrix configuration with
the same digest.

Usage::

    .venv/bin/python -m verif.golden_vectors            # rewrite golden/ (review the diff!)
    .venv/bin/python -m verif.golden_vectors --check    # verify files against the manifest
"""

import argparse
import hashlib
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path

# The activation-mode stream packers live in the package, next to the weight-mode ones;
# re-exported here for the tests that replay the vectors.
from sqhw.golden.packing import act_token_image, act_weight_image

__all__ = ["VECTORS", "ACT_VECTORS", "SEED", "GOLDEN_DIR", "generate", "check", "load_vector",
           "load_act_vector", "act_weight_image", "act_token_image", "main"]

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
SEED = 20250601

#: name → (HWConfig as a dict, M). Each is also a configuration of the default regression
#: matrix (verif/top/test_top.py::CONFIGS), so the RTL replays it in ``make verify``.
VECTORS: dict[str, tuple[dict, int]] = {
    "r1-b8-k2-8_4": ({"fmt": {"bank_size": 8, "sparsity": 0.75, "high_bits": 8, "low_bits": 4,
                              "scale_bits": 8}, "rows": 1, "act_bits": 8, "k_max": 32,
                      "acc_bits": 32}, 6),
    "r4-b8-k2-4_2": ({"fmt": {"bank_size": 8, "sparsity": 0.75, "high_bits": 4, "low_bits": 2,
                              "scale_bits": 8}, "rows": 4, "act_bits": 8, "k_max": 32,
                      "acc_bits": 24}, 5),
    "r4-2_4": ({"fmt": {"bank_size": 4, "sparsity": 0.5, "high_bits": 8, "low_bits": 0,
                        "scale_bits": 8}, "rows": 4, "act_bits": 8, "k_max": 16,
                "acc_bits": 32}, 5),
    "r4-b16-int8": ({"fmt": {"bank_size": 16, "sparsity": 1.0, "high_bits": 8, "low_bits": 8,
                             "scale_bits": 8}, "rows": 4, "act_bits": 8, "k_max": 64,
                     "acc_bits": 32}, 5),
}

#: name → (HWConfig as a dict, M), activation mode. The two configurations of the default
#: activation-mode matrix (verif/top/test_top_act.py::CONFIGS), so the RTL replays them there
#: (cocotb test ``act_frozen_vectors``) with the build that regression already makes.
ACT_VECTORS: dict[str, tuple[dict, int]] = {
    "act-r4-b16-k2-8_4-w4": ({"fmt": {"bank_size": 16, "sparsity": 0.875, "high_bits": 8,
                                      "low_bits": 4, "scale_bits": 8}, "rows": 4,
                              "act_bits": 8, "k_max": 64, "acc_bits": 24,
                              "operand": "activation", "weight_bits": 4}, 5),
    "act-r3-b8-k4-8_2-w8": ({"fmt": {"bank_size": 8, "sparsity": 0.5, "high_bits": 8,
                                     "low_bits": 2, "scale_bits": 8}, "rows": 3,
                             "act_bits": 8, "k_max": 32, "acc_bits": 32,
                             "operand": "activation", "weight_bits": 8}, 6),
}

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _savez_deterministic(path: Path, arrays: dict) -> None:
    """``np.savez`` with fixed zip metadata (byte-identical on regeneration)."""
    import numpy as np
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    path.write_bytes(buf.getvalue())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict:
    from importlib import metadata

    import numpy
    import torch
    return {"sqhw": metadata.version("sqhw"), "torch": torch.__version__,
            "numpy": numpy.__version__}


def _make(name: str, cfg_dict: dict, M: int, seed: int) -> tuple[dict, dict]:
    import numpy as np
    import torch

    from sqhw.format import HWConfig
    from sqhw.golden import hw_matmul, pack, random_sqtensor
    cfg = HWConfig.from_dict(cfg_dict)
    assert cfg.to_dict() == cfg_dict, f"{name}: config dict is not canonical"
    K, N = cfg.k_max, 2 * cfg.rows
    # One generator per file, seeded from the global seed and the name (stable).
    g = _generator(seed, name)
    sq = random_sqtensor(cfg.fmt, K, N, generator=g)
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    x = torch.randint(lo, hi + 1, (M, K), generator=g)
    x[0, :] = lo                                # the most negative activation
    x[1, ::2] = hi
    y = hw_matmul(x, sq, cfg=cfg)
    arrays = {
        "image": np.frombuffer(pack(sq), dtype=np.uint8),
        "x": x.numpy().astype(np.int16),
        "expected": y.numpy().astype(np.int64),
        "config": np.array(json.dumps(cfg_dict, sort_keys=True)),
    }
    entry = {"name": name, "file": f"{name}.npz", "config": cfg_dict, "digest": cfg.digest(),
             "format": cfg.fmt.name, "K": K, "N": N, "M": M}
    return arrays, entry


def _generator(seed: int, name: str):
    import torch
    sub = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")
    return torch.Generator().manual_seed(sub & (2**62 - 1))


def _make_act(name: str, cfg_dict: dict, M: int, seed: int) -> tuple[dict, dict]:
    import numpy as np
    import torch

    from sqhw.format import HWConfig
    from sqhw.golden import (
        SQActivation,
        calibrate_activation_mask,
        hw_matmul_act,
        quantize_activation_sq,
        quantize_weight_dense,
    )
    cfg = HWConfig.from_dict(cfg_dict)
    assert cfg.is_act_mode, f"{name}: not an activation-mode configuration"
    assert cfg.to_dict() == cfg_dict, f"{name}: config dict is not canonical"
    fmt = cfg.fmt
    b, K, N = fmt.bank_size, cfg.k_max, 2 * cfg.rows
    nb = K // b
    g = _generator(seed, name)
    # Calibration data with a few outlier channels; the mask is the calibrated one.
    chan = torch.exp(torch.randn(K, generator=g) * 1.5)
    w_f = torch.randn(K, N, generator=g)
    x_cal = torch.randn(32, K, generator=g) * chan
    mask = calibrate_activation_mask(x_cal, w_f, fmt).mask
    weight = quantize_weight_dense(w_f, cfg.weight_bits)
    wcodes = weight.codes.clone()
    wcodes[:, 0] = -weight.qmax                 # column 0 at the extreme code
    wcodes[::2, 1] = weight.qmax                # column 1: +max on every other row
    weight = type(weight)(codes=wcodes, col_scale=weight.col_scale, bits=weight.bits)
    # Tokens 2..M-1: heavy-tailed activations, dynamically quantized with the static mask;
    # the last token has an all-zero first bank (scale codes 0).
    x_f = torch.randn(M, K, generator=g) * torch.rand(M, K, generator=g).pow(4) * chan * 4
    x_f[M - 1, :b] = 0.0
    act = quantize_activation_sq(x_f, mask, fmt)
    codes = act.codes.clone()
    sh, sl, ts = act.scale_high.clone(), act.scale_low.clone(), act.token_scale.clone()
    top_h = fmt.scale_max if fmt.has_high else 0
    top_l = fmt.scale_max if fmt.has_low_scale else 0
    # Token 0: every code at -max of its group, every scale code at max (with column 0:
    # a result near +bound). Token 1: +max on every other channel, 0 elsewhere.
    codes[0] = torch.where(mask, -fmt.high_max, -fmt.low_max).to(codes.dtype)
    codes[1] = 0
    codes[1, ::2] = torch.where(mask[::2], fmt.high_max, fmt.low_max).to(codes.dtype)
    sh[:2], sl[:2], ts[:2] = top_h, top_l, 1.0
    act = SQActivation(codes=codes, scale_high=sh, scale_low=sl, token_scale=ts, mask=mask,
                       fmt=fmt)
    y = hw_matmul_act(act, weight, cfg=cfg)
    arrays = {
        "mask": mask.numpy().astype(np.bool_),
        "w": weight.codes.numpy().astype(np.int8),
        "col_scale": weight.col_scale.numpy().astype(np.float32),
        "image": np.frombuffer(act_weight_image(cfg, mask, weight.codes), dtype=np.uint8),
        "x": codes.numpy().astype(np.int16),
        "scale_high": sh.numpy().astype(np.int16),
        "scale_low": sl.numpy().astype(np.int16),
        "token_scale": ts.numpy().astype(np.float32),
        "tokens": act_token_image(cfg, codes, sh, sl),
        "expected": y.numpy().astype(np.int64),
        "config": np.array(json.dumps(cfg_dict, sort_keys=True)),
    }
    entry = {"name": name, "file": f"{name}.npz", "config": cfg_dict, "digest": cfg.digest(),
             "format": fmt.name, "operand": "activation", "weight_bits": cfg.weight_bits,
             "K": K, "N": N, "M": M, "tiles": N // cfg.rows, "nb": nb}
    return arrays, entry


def generate(out_dir: Path = GOLDEN_DIR, seed: int = SEED) -> dict:
    """Write every vector file and ``MANIFEST.json`` into ``out_dir`` (atomically: a
    temporary folder is filled, then its files are moved in). Returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "generator": "python -m verif.golden_vectors",
        "seed": seed,
        "versions": _versions(),
        "vectors": [],
        "act_vectors": [],
    }
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp = Path(tmp)
        for name, (cfg_dict, M) in VECTORS.items():
            arrays, entry = _make(name, cfg_dict, M, seed)
            _savez_deterministic(tmp / entry["file"], arrays)
            entry["sha256"] = _sha256(tmp / entry["file"])
            manifest["vectors"].append(entry)
        for name, (cfg_dict, M) in ACT_VECTORS.items():
            arrays, entry = _make_act(name, cfg_dict, M, seed)
            _savez_deterministic(tmp / entry["file"], arrays)
            entry["sha256"] = _sha256(tmp / entry["file"])
            manifest["act_vectors"].append(entry)
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
        for f in sorted(tmp.iterdir()):
            f.replace(out_dir / f.name)
    return manifest


def load_vector(entry: dict, golden_dir: Path = GOLDEN_DIR) -> dict:
    """The arrays of one manifest entry: image (bytes), x, expected, config (dict)."""
    import numpy as np
    with np.load(Path(golden_dir) / entry["file"], allow_pickle=False) as z:
        return {"image": z["image"].tobytes(), "x": z["x"], "expected": z["expected"],
                "config": json.loads(str(z["config"]))}


def load_act_vector(entry: dict, golden_dir: Path = GOLDEN_DIR) -> dict:
    """The arrays of one activation-mode manifest entry (numpy; ``image`` as bytes,
    ``config`` as a dict)."""
    import numpy as np
    with np.load(Path(golden_dir) / entry["file"], allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    out["image"] = out["image"].tobytes()
    out["config"] = json.loads(str(out["config"]))
    return out


def check(golden_dir: Path = GOLDEN_DIR) -> list[str]:
    """Problems found comparing ``golden_dir`` with its manifest (empty list: all good)."""
    golden_dir = Path(golden_dir)
    path = golden_dir / "MANIFEST.json"
    if not path.is_file():
        return [f"no manifest at {path}; run python -m verif.golden_vectors"]
    manifest = json.loads(path.read_text())
    problems = []
    for e in manifest["vectors"] + manifest.get("act_vectors", []):
        f = golden_dir / e["file"]
        if not f.is_file():
            problems.append(f"{e['file']}: missing")
        elif _sha256(f) != e["sha256"]:
            problems.append(f"{e['file']}: sha256 differs from the manifest")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m verif.golden_vectors",
        description="Write the frozen golden vectors (golden/*.npz + MANIFEST.json) from the "
                    "current golden model, or check the files against the manifest.")
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR,
                        help="output folder (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED,
                        help="base seed of the random weights and activations "
                             "(default: %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="only verify the files against MANIFEST.json (default: write)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out)
        for p in problems:
            print(f"golden_vectors: {p}", file=sys.stderr)
        if not problems:
            print(f"golden_vectors: {args.out} matches its manifest")
        return 1 if problems else 0
    manifest = generate(args.out, args.seed)
    for e in manifest["vectors"]:
        print(f"{e['file']}: {e['format']} rows={e['config']['rows']} K={e['K']} N={e['N']} "
              f"M={e['M']} digest {e['digest']} sha256 {e['sha256'][:12]}")
    for e in manifest["act_vectors"]:
        print(f"{e['file']}: activation {e['format']} wb={e['weight_bits']} "
              f"rows={e['config']['rows']} K={e['K']} N={e['N']} M={e['M']} "
              f"digest {e['digest']} sha256 {e['sha256'][:12]}")
    n = len(manifest["vectors"]) + len(manifest["act_vectors"])
    print(f"wrote {n} vector files and MANIFEST.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
