"""Golden-model speed: quantize+pack and hw_matmul against plain torch in the same run."""

import torch

from ..format import SQFormat
from ..golden import hw_matmul, pack, quantize_weight
from .core import Row, best_of

__all__ = ["run"]


def run(size: int = 4096, m: int = 64) -> list[Row]:
    torch.manual_seed(0)
    fmt = SQFormat()
    w = torch.randn(size, size)
    x = torch.randint(-127, 128, (m, size), dtype=torch.int32)
    xf = torch.randn(m, size)

    t_qp = best_of(lambda: pack(quantize_weight(w, fmt)))

    def rtn_int8():      # the plainest per-channel INT8 quantizer, as the baseline
        s = w.abs().amax(dim=0, keepdim=True) / 127
        return torch.round(w / s).to(torch.int8).numpy().tobytes()

    t_rtn = best_of(rtn_int8)
    t_mm = best_of(lambda: xf @ w, repeat=5)
    # First call on a fresh SQTensor includes the one-off weight preparation (validation and
    # the integer effective weight, like a hardware weight load); later calls reuse it.
    t_first = best_of(lambda sq: hw_matmul(x, sq), setup=lambda: quantize_weight(w, fmt))
    sq = quantize_weight(w, fmt)
    hw_matmul(x, sq)
    t_steady = best_of(lambda: hw_matmul(x, sq), repeat=5)
    shape = f"{size}x{size}"
    return [
        Row(f"quantize_weight+pack {shape} {fmt.name} [s] (target <= 2 s)", t_qp, 2.0,
            "s", "target", target=1.0),
        Row(f"quantize_weight+pack {shape}", t_qp, t_rtn, "s", "per-channel RTN INT8"),
        Row(f"hw_matmul {m}x{shape}, first call", t_first, t_mm, "s", "torch fp32 matmul",
            target=10.0),
        Row(f"hw_matmul {m}x{shape}, weight prepared", t_steady, t_mm, "s",
            "torch fp32 matmul", target=10.0),
    ]
