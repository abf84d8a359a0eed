"""``python -m sqhw.gen``: emit the Verilog of an SQ-format MAC array."""

from .cli import PRESETS, config_from_args, generate, main

__all__ = ["main", "generate", "config_from_args", "PRESETS"]
