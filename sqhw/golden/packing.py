"""The streams the hardware takes, bit for bit.

Weight mode: the weight memory image (datasheet §4), :func:`pack` and :func:`unpack`.
Activation mode (datasheet §10): the weight stream :func:`act_weight_image` (mask words and
reordered dense weight records) and the token stream :func:`act_token_image` (codes and
per-bank scale codes).

Weight-mode image, bit order: a record's bit ``p`` is bit ``p % 8`` (LSB = 0) of its byte
``p // 8``. Fields from bit 0 up: ``low[0..b-1]`` (``low_width`` bits each),
``high[0..k-1]`` (``high_bits`` each), ``scale_low`` (if ``low_bits > 0``), ``scale_high``
(if ``k > 0``), zero padding.
So byte ``0b1000_0111`` at the start of an INT4 record is ``low[0] = 7, low[1] = -8``.
Records run bank by bank inside a column, column after column.
"""

import numpy as np
import torch

from ..format import HWConfig, SQFormat
from .tensor import MalformedSQError, SQTensor, reorder_permutation

__all__ = ["pack", "unpack", "record_fields", "act_weight_image", "act_token_image"]


def record_fields(fmt: SQFormat) -> list[tuple[str, int, int, bool]]:
    """``(name, count, width, signed)`` of each record field, in bit order."""
    fields = [("low", fmt.bank_size, fmt.low_width, True)]
    if fmt.has_high:
        fields.append(("high", fmt.k, fmt.high_bits, True))
    if fmt.has_low_scale:
        fields.append(("scale_low", 1, fmt.scale_bits, False))
    if fmt.has_high:
        fields.append(("scale_high", 1, fmt.scale_bits, False))
    return fields


def _to_bits(codes: np.ndarray, width: int) -> np.ndarray:
    """[..., count] integers → [..., count·width] bits, LSB first (two's complement)."""
    nbytes = 1 if width <= 8 else 2
    u = codes.astype(np.int8 if nbytes == 1 else np.int16).astype(f"<u{nbytes}")
    bits = np.unpackbits(u.view(np.uint8).reshape(*codes.shape, nbytes), axis=-1,
                         bitorder="little")
    return bits[..., :width].reshape(*codes.shape[:-1], -1)


def _to_bytes(codes: np.ndarray, width: int) -> np.ndarray | None:
    """Byte-aligned fast path of :func:`_to_bits` + packbits for 4-, 8- and 16-bit fields:
    [..., count] integers → [..., count·width/8] bytes, or None if it does not apply."""
    if width == 8:
        return codes.astype(np.int8).view(np.uint8)
    if width == 16:
        return codes.astype("<i2").view(np.uint8)
    if width == 4 and codes.shape[-1] % 2 == 0:
        u = codes.astype(np.uint8) & 0xF
        return u[..., 0::2] | (u[..., 1::2] << 4)
    return None


def _from_bits(bits: np.ndarray, count: int, width: int, signed: bool) -> np.ndarray:
    b = bits.reshape(*bits.shape[:-1], count, width).astype(np.int64)
    u = (b << np.arange(width)).sum(axis=-1)
    if signed:
        u = np.where(u >= 1 << (width - 1), u - (1 << width), u)
    return u


def _field_arrays(sq: SQTensor) -> dict[str, np.ndarray]:
    """Each field as [N, nb, count] integers."""
    fmt, nb = sq.fmt, sq.n_banks
    N = sq.shape[1]
    k = fmt.k
    return {
        "low": sq.low.numpy().reshape(nb, fmt.bank_size, N).transpose(2, 0, 1),
        "high": sq.high.numpy().reshape(nb, k, N).transpose(2, 0, 1),
        "scale_low": sq.scale_low.numpy().T[..., None],
        "scale_high": sq.scale_high.numpy().T[..., None],
    }


def pack(sq: SQTensor) -> bytes:
    """The memory image of ``sq``: ``N · K/b · record_bytes`` bytes (datasheet §4).

    Raises
    ------
    MalformedSQError
        If ``sq`` does not validate: a malformed tensor is never packed.
    """
    sq.validate()
    fmt = sq.fmt
    arrays = _field_arrays(sq)
    if fmt.record_bits % 8 == 0:
        parts = [_to_bytes(arrays[name], width) for name, _, width, _ in record_fields(fmt)]
        if all(p is not None for p in parts):
            return np.concatenate(parts, axis=-1).tobytes()
    return _pack_bits(fmt, arrays)


def _pack_bits(fmt: SQFormat, arrays: dict[str, np.ndarray]) -> bytes:
    """The general path: any field widths, via a bit array."""
    parts = [_to_bits(arrays[name], width) for name, _, width, _ in record_fields(fmt)]
    bits = np.concatenate(parts, axis=-1)
    pad = fmt.record_bytes * 8 - fmt.record_bits
    if pad:
        bits = np.concatenate([bits, np.zeros((*bits.shape[:-1], pad), np.uint8)], axis=-1)
    return np.packbits(bits, axis=-1, bitorder="little").tobytes()


def unpack(data: bytes, fmt: SQFormat, K: int, N: int,
           col_scale: torch.Tensor | None = None) -> SQTensor:
    """Read a memory image back into a validated :class:`SQTensor`.

    Raises
    ------
    MalformedSQError
        If the image is truncated or over-long, has non-zero padding, or holds a malformed
        bank (wrong vmask count, out-of-range code). It never returns garbage.
    """
    b = fmt.bank_size
    if K <= 0 or K % b or N <= 0:
        raise ValueError(f"K must be a positive multiple of bank_size {b} and N positive, "
                         f"not K={K}, N={N}")
    nb = K // b
    expect = N * nb * fmt.record_bytes
    if len(data) != expect:
        kind = "truncated" if len(data) < expect else "over-long"
        raise MalformedSQError(f"{kind} image: {len(data)} bytes, expected {expect} "
                               f"({N} columns x {nb} banks x {fmt.record_bytes} bytes)")
    raw = np.frombuffer(bytes(data), dtype=np.uint8).reshape(N, nb, fmt.record_bytes)
    bits = np.unpackbits(raw, axis=-1, bitorder="little")
    if bits[..., fmt.record_bits:].any():
        n, j = (int(i) for i in np.argwhere(bits[..., fmt.record_bits:].any(axis=-1))[0])
        raise MalformedSQError(f"non-zero padding bits in bank {j} of column {n}")
    fields, pos = {}, 0
    for name, count, width, signed in record_fields(fmt):
        fields[name] = _from_bits(bits[..., pos:pos + count * width], count, width, signed)
        pos += count * width
    zeros = np.zeros((N, nb, 1), np.int64)
    low = fields["low"].transpose(1, 2, 0).reshape(K, N)
    high = fields.get("high", np.zeros((N, nb, 0), np.int64)).transpose(1, 2, 0)
    sq = SQTensor(
        low=torch.from_numpy(low.astype(np.int8)),
        high=torch.from_numpy(high.reshape(nb * fmt.k, N).astype(np.int8)),
        scale_low=torch.from_numpy(fields.get("scale_low", zeros)[..., 0].T.astype(np.int32)),
        scale_high=torch.from_numpy(fields.get("scale_high", zeros)[..., 0].T.astype(np.int32)),
        col_scale=torch.ones(N) if col_scale is None else col_scale.to(torch.float32),
        fmt=fmt)
    return sq.validate()


# -- activation mode -----------------------------------------------------------------------

def act_weight_image(cfg: HWConfig, mask, w) -> bytes:
    """The activation-mode weight stream of W[K, N] (datasheet §10.3), N a multiple of
    ``rows``: per tile of R columns, column 0 = the K/b mask words (bit i of record j set
    when channel j·b + i is high), then for each of the R columns its K/b records of b
    **reordered** codes (``w[reorder_permutation(mask)]``), code p at bits
    [p·wb, (p+1)·wb); every record ``weight_data_bits/8`` bytes, little-endian."""
    mask = torch.as_tensor(mask, dtype=torch.bool)
    w = torch.as_tensor(w).to(torch.int64)
    b, R, wb = cfg.fmt.bank_size, cfg.rows, cfg.weight_bits
    K, N = w.shape
    if tuple(mask.shape) != (K,) or K % b or N % R:
        raise ValueError(f"need a mask [K] and weights [K, N], K a multiple of bank_size {b} "
                         f"and N a multiple of rows {R}; not mask {list(mask.shape)}, "
                         f"weights {[K, N]}")
    nbytes, nb, wmask = cfg.weight_data_bits // 8, K // b, (1 << wb) - 1
    bits = mask.tolist()
    mask_recs = b"".join(sum(1 << i for i in range(b) if bits[j * b + i])
                         .to_bytes(nbytes, "little") for j in range(nb))
    wr = w[reorder_permutation(mask, cfg.fmt)].T.tolist()      # [N][K], reordered
    out = bytearray()
    for t in range(N // R):
        out += mask_recs
        for n in range(t * R, (t + 1) * R):
            for j in range(nb):
                word = sum((v & wmask) << (p * wb) for p, v in enumerate(wr[n][j * b:(j + 1) * b]))
                out += word.to_bytes(nbytes, "little")
    return bytes(out)


def act_token_image(cfg: HWConfig, codes, scale_high, scale_low) -> np.ndarray:
    """uint8 [M, K/b · beat bytes]: every token's activation beats (datasheet §10.4), bank j
    at bytes [j·L, (j+1)·L), L = ``act_data_bits/8``: the b codes of the bank in natural
    order (a bits each, two's complement), then the bank's high scale code (k > 0) and low
    scale code (l > 0), sb bits each, zero padding to the byte."""
    fmt = cfg.fmt
    b, a, sb = fmt.bank_size, cfg.act_bits, fmt.scale_bits
    codes = torch.as_tensor(codes).to(torch.int64).tolist()
    sh = torch.as_tensor(scale_high).to(torch.int64).tolist()
    sl = torch.as_tensor(scale_low).to(torch.int64).tolist()
    lanes, amask = cfg.act_data_bits // 8, (1 << a) - 1
    rows = []
    for m, row in enumerate(codes):
        data = bytearray()
        for j in range(len(row) // b):
            word = sum((v & amask) << (i * a) for i, v in enumerate(row[j * b:(j + 1) * b]))
            pos = b * a
            if fmt.has_high:
                word |= sh[m][j] << pos
                pos += sb
            if fmt.has_low_scale:
                word |= sl[m][j] << pos
            data += word.to_bytes(lanes, "little")
        rows.append(np.frombuffer(bytes(data), dtype=np.uint8))
    return np.stack(rows)
