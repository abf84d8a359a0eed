"""The frozen golden vectors of ``golden/`` (written by ``python -m verif.golden_vectors``).

- The files match ``golden/MANIFEST.json`` (sha256, shapes, config digest).
- The current golden model reproduces them: ``unpack`` of the stored image, ``pack`` back
  to the same bytes, and ``hw_matmul`` gives the stored results. A failure here means the
  model drifted (or the vectors must be regenerated on purpose: see golden/README.md).
- At least one vector configuration is in the default RTL matrix, where the cocotb test
  ``frozen_vectors`` replays it on the RTL.
"""

import json

import pytest

from verif.golden_vectors import GOLDEN_DIR, VECTORS, check, load_vector

MANIFEST = json.loads((GOLDEN_DIR / "MANIFEST.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["vectors"]}


def test_manifest_matches_files():
    assert check() == []
    assert set(ENTRIES) == set(VECTORS), "golden/ is stale: rerun python -m verif.golden_vectors"
    for key in ("seed", "versions", "generator"):
        assert key in MANIFEST
    assert set(MANIFEST["versions"]) == {"sqhw", "torch", "numpy"}


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_model_reproduces_frozen_results(name):
    import torch

    from sqhw.format import HWConfig
    from sqhw.golden import hw_matmul, pack, unpack
    e = ENTRIES[name]
    v = load_vector(e)
    cfg = HWConfig.from_dict(e["config"])
    assert v["config"] == e["config"] == VECTORS[name][0]
    assert cfg.digest() == e["digest"], "HWConfig.digest() changed: every output name moves"
    K, N, M = e["K"], e["N"], e["M"]
    assert v["x"].shape == (M, K) and v["expected"].shape == (M, N)
    sq = unpack(v["image"], cfg.fmt, K, N)
    assert pack(sq) == v["image"], "pack/unpack no longer round-trips the frozen image"
    y = hw_matmul(torch.from_numpy(v["x"].astype("int64")), sq, cfg.act_bits, cfg.acc_bits)
    assert torch.equal(y, torch.from_numpy(v["expected"])), "hw_matmul drifted"


def test_frozen_configs_are_replayed_on_rtl():
    from verif.top.test_top import CONFIGS
    digests = {c.digest() for c in CONFIGS.values()}
    replayed = [e["name"] for e in MANIFEST["vectors"] if e["digest"] in digests]
    assert replayed, "no frozen vector configuration is in the default RTL matrix"


def test_frozen_vectors_catch_a_change(tmp_path):
    """The drift check can fail: one flipped bit of a stored result is caught."""
    import numpy as np
    import torch

    from sqhw.format import HWConfig
    from sqhw.golden import hw_matmul, unpack
    e = MANIFEST["vectors"][0]
    v = load_vector(e)
    cfg = HWConfig.from_dict(e["config"])
    y = v["expected"].copy()
    y[0, 0] ^= 1
    sq = unpack(v["image"], cfg.fmt, e["K"], e["N"])
    got = hw_matmul(torch.from_numpy(v["x"].astype("int64")), sq, cfg.act_bits).numpy()
    assert not np.array_equal(got, y)
