"""The frozen golden vectors of ``golden/`` (written by ``python -m verif.golden_vectors``).

- The files match ``golden/MANIFEST.json`` (sha256, shapes, config digest).
- The current golden model reproduces them: ``unpack`` of the stored image, ``pack`` back
  to the same bytes, and ``hw_matmul`` gives the stored results. A failure here means the
  model drifted (or the vectors must be regenerated on purpose: see golden/README.md).
- At least one vector configuration is in the default RTL matrix, where the cocotb test
  ``frozen_vectors`` replays it on the RTL.
- Activation mode (``act_vectors`` of the manifest): ``hw_matmul_act`` of the stored mask,
  weight codes, activation codes and scale codes gives the stored results; the stored
  weight-stream and token images are what the datasheet §10 packing of those gives; every
  configuration is in the default activation-mode matrix, where the cocotb test
  ``act_frozen_vectors`` (verif/top/test_top_act.py) replays it on the RTL.
"""

import json

import pytest

from verif.golden_vectors import (
    ACT_VECTORS,
    GOLDEN_DIR,
    VECTORS,
    act_token_image,
    act_weight_image,
    check,
    load_act_vector,
    load_vector,
)

MANIFEST = json.loads((GOLDEN_DIR / "MANIFEST.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["vectors"]}
ACT_ENTRIES = {e["name"]: e for e in MANIFEST.get("act_vectors", [])}


def test_manifest_matches_files():
    assert check() == []
    assert set(ENTRIES) == set(VECTORS), "golden/ is stale: rerun python -m verif.golden_vectors"
    assert set(ACT_ENTRIES) == set(ACT_VECTORS), (
        "golden/ is stale: rerun python -m verif.golden_vectors")
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


# -- activation mode -----------------------------------------------------------------------

def _act_operands(e: dict, v: dict):
    """The stored operands as the golden model's types (no quantizer call)."""
    import torch

    from sqhw.format import HWConfig
    from sqhw.golden import DenseWeight, SQActivation
    cfg = HWConfig.from_dict(e["config"])
    act = SQActivation(codes=torch.from_numpy(v["x"].astype("int32")),
                       scale_high=torch.from_numpy(v["scale_high"].astype("int32")),
                       scale_low=torch.from_numpy(v["scale_low"].astype("int32")),
                       token_scale=torch.from_numpy(v["token_scale"]),
                       mask=torch.from_numpy(v["mask"]), fmt=cfg.fmt)
    weight = DenseWeight(codes=torch.from_numpy(v["w"]),
                         col_scale=torch.from_numpy(v["col_scale"]), bits=cfg.weight_bits)
    return cfg, act, weight


@pytest.mark.parametrize("name", sorted(ACT_ENTRIES))
def test_model_reproduces_frozen_act_results(name):
    """``hw_matmul_act`` of the stored operands equals the stored results exactly, and the
    stored stream images are the datasheet packing of the stored operands."""
    import numpy as np
    import torch

    from sqhw.golden import hw_bank_partials_act, hw_matmul_act
    e = ACT_ENTRIES[name]
    v = load_act_vector(e)
    cfg, act, weight = _act_operands(e, v)
    assert v["config"] == e["config"] == ACT_VECTORS[name][0]
    assert cfg.is_act_mode and cfg.weight_bits == e["weight_bits"]
    assert cfg.digest() == e["digest"], "HWConfig.digest() changed: every output name moves"
    K, N, M = e["K"], e["N"], e["M"]
    nb = K // cfg.fmt.bank_size
    assert K == cfg.k_max and N == 2 * cfg.rows and nb == e["nb"]
    assert v["mask"].shape == (K,) and v["w"].shape == (K, N)
    assert v["x"].shape == (M, K) and v["expected"].shape == (M, N)
    assert v["scale_high"].shape == v["scale_low"].shape == (M, nb)
    # The results: hw_matmul_act, and the per-bank datapath (gather lanes x reordered rows).
    y = hw_matmul_act(act, weight, cfg.acc_bits)
    assert torch.equal(y, torch.from_numpy(v["expected"])), "hw_matmul_act drifted"
    p_high, p_low = hw_bank_partials_act(act, weight)
    banked = (act.scale_high.to(torch.int64)[:, :, None] * p_high
              + act.scale_low.to(torch.int64)[:, :, None] * p_low).sum(dim=1)
    assert torch.equal(banked, y), "hw_bank_partials_act disagrees with hw_matmul_act"
    # The wire images (mask + reordered weight records, activation beats).
    assert act_weight_image(cfg, act.mask, weight.codes) == v["image"], (
        "the weight-stream packing (or reorder_permutation) drifted")
    assert len(v["image"]) == e["tiles"] * (cfg.rows + 1) * nb * cfg.weight_data_bits // 8
    tokens = act_token_image(cfg, act.codes, act.scale_high, act.scale_low)
    assert np.array_equal(tokens, v["tokens"]), "the activation-beat packing drifted"
    assert v["tokens"].shape == (M, nb * cfg.act_data_bits // 8)


def test_frozen_act_configs_are_replayed_on_rtl():
    """Every activation-mode vector has the digest of a default-matrix configuration of
    verif/top/test_top_act.py (so ``act_frozen_vectors`` replays it, on the same build)."""
    from verif.top.test_top_act import CONFIGS
    digests = {c.digest() for c in CONFIGS.values()}
    assert ACT_ENTRIES
    missing = [n for n, e in ACT_ENTRIES.items() if e["digest"] not in digests]
    assert not missing, f"activation-mode vectors no RTL run replays: {missing}"
    assert {e["weight_bits"] for e in ACT_ENTRIES.values()} == {4, 8}


def test_frozen_act_vectors_catch_a_change():
    """The activation-mode drift check can fail: one flipped bit of a stored result, or of
    one stored scale code, is caught."""
    import numpy as np

    from sqhw.golden import hw_matmul_act
    e = next(iter(ACT_ENTRIES.values()))
    v = load_act_vector(e)
    cfg, act, weight = _act_operands(e, v)
    got = hw_matmul_act(act, weight, cfg.acc_bits).numpy()
    assert np.array_equal(got, v["expected"])
    y = v["expected"].copy()
    y[2, 1] ^= 1
    assert not np.array_equal(got, y)
    v["scale_low"][2, 0] ^= 1
    cfg, act, weight = _act_operands(e, v)
    assert not np.array_equal(hw_matmul_act(act, weight, cfg.acc_bits).numpy(),
                              v["expected"])
