"""sqhw: RTL generator and verification framework for the SQ-format."""

__version__ = "0.1.0"
