"""The core's sticky status bits (datasheet §8, §10.6): one definition for the gateware,
the testbenches and the host."""

import enum

__all__ = ["Status"]


class Status(enum.IntFlag):
    """Bit ``i`` of the 4-bit ``status`` port. Iteration is in bit order."""

    #: A malformed weight record (§4) or, in activation mode, mask word or weight code.
    ERR_WEIGHT = 1 << 0
    #: A column's record count differs from column 0's, or exceeds nb_max.
    ERR_TILE_LEN = 1 << 1
    #: A token's beat count differs from its tile's nb.
    ERR_TOKEN_LEN = 1 << 2
    #: An activation code outside its group's range (activation mode; 0 in weight mode).
    ERR_ACT_CODE = 1 << 3

    def describe(self) -> str:
        """The set bits by name (``err_weight, err_token_len``), or ``ok``."""
        return ", ".join(s.name.lower() for s in Status if s in self) or "ok"
