"""Decoded weight words (``sqhw.gateware.row.word_layout``) from a golden SQTensor."""

import torch

from sqhw.gateware.row import word_layout

__all__ = ["decoded_words"]


def decoded_words(sq, n=0) -> list[int]:
    """The decoded word of every bank of column ``n``, as integers (the row memory image)."""
    fmt = sq.fmt
    b, k = fmt.bank_size, fmt.k
    layout = word_layout(fmt)
    low = sq.low_values()[:, n]
    mask = sq.mask[:, n]
    words = []
    for j in range(sq.n_banks):
        fields = {}
        if fmt.has_low_scale:
            fields["low"] = low[j * b:(j + 1) * b].tolist()
            fields["scale_low"] = int(sq.scale_low[j, n])
        if fmt.has_high:
            idx = torch.nonzero(mask[j * b:(j + 1) * b]).flatten().tolist()
            fields["high"] = sq.high[j * k:(j + 1) * k, n].tolist()
            fields["rel"] = [i - t for t, i in enumerate(idx)]
            fields["scale_high"] = int(sq.scale_high[j, n])
        words.append(layout.const(fields).as_value().value)
    return words
