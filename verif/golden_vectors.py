"""Frozen golden vectors: ``python -m verif.golden_vectors`` (re)writes ``golden/``.

For each configuration of :data:`VECTORS`, one ``.npz`` holds a packed weight image, the
activations and the results ``sqhw.golden.hw_matmul`` gave when the file was written:

- ``image``    uint8 [bytes]: the memory image (datasheet §4) of W[K, N], N = 2·rows
  (two tiles of R columns), K = k_max;
- ``x``        int16 [M, K]: activation codes, with the extremes -2^(a-1) and 2^(a-1)-1;
- ``expected`` int64 [M, N]: the integer results (datasheet §6);
- ``config``   the HWConfig as canonical JSON (a 0-d unicode array).

``golden/MANIFEST.json`` lists every file with its configuration, digest, shapes, seed,
sha256 and the sqhw / torch / numpy versions that wrote it. The ``.npz`` files are written
with a fixed zip timestamp, so regenerating with unchanged code gives identical bytes.

``verif/top/test_golden_vectors.py`` checks that the files match the manifest and that the
current golden model still reproduces them (model drift); the cocotb test
``frozen_vectors`` in ``verif/top/test_top.py`` replays them on the RTL of every matrix
configuration with the same digest.

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

__all__ = ["VECTORS", "SEED", "GOLDEN_DIR", "generate", "check", "load_vector", "main"]

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
    sub = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")
    g = torch.Generator().manual_seed(sub & (2**62 - 1))
    sq = random_sqtensor(cfg.fmt, K, N, generator=g)
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    x = torch.randint(lo, hi + 1, (M, K), generator=g)
    x[0, :] = lo                                # the most negative activation
    x[1, ::2] = hi
    y = hw_matmul(x, sq, cfg.act_bits, cfg.acc_bits)
    arrays = {
        "image": np.frombuffer(pack(sq), dtype=np.uint8),
        "x": x.numpy().astype(np.int16),
        "expected": y.numpy().astype(np.int64),
        "config": np.array(json.dumps(cfg_dict, sort_keys=True)),
    }
    entry = {"name": name, "file": f"{name}.npz", "config": cfg_dict, "digest": cfg.digest(),
             "format": cfg.fmt.name, "K": K, "N": N, "M": M}
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
    }
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp = Path(tmp)
        for name, (cfg_dict, M) in VECTORS.items():
            arrays, entry = _make(name, cfg_dict, M, seed)
            _savez_deterministic(tmp / entry["file"], arrays)
            entry["sha256"] = _sha256(tmp / entry["file"])
            manifest["vectors"].append(entry)
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


def check(golden_dir: Path = GOLDEN_DIR) -> list[str]:
    """Problems found comparing ``golden_dir`` with its manifest (empty list: all good)."""
    golden_dir = Path(golden_dir)
    path = golden_dir / "MANIFEST.json"
    if not path.is_file():
        return [f"no manifest at {path}; run python -m verif.golden_vectors"]
    manifest = json.loads(path.read_text())
    problems = []
    for e in manifest["vectors"]:
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
    print(f"wrote {len(manifest['vectors'])} vector files and MANIFEST.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
