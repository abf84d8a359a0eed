"""Synthesis engine: area measurement of rows with YoWASP Yosys (ECP5 with and without
DSPs, a technology-neutral gate and CMOS count). ``python -m sqhw.bench area`` and the
report's area stage both measure through it. :mod:`.asic` (imported on its own) maps a row
to a standard-cell library and times it with OpenSTA (``python -m sqhw.bench asic``)."""

from .area import K_MAX, area_code_sources, build_row, neutral_count, row_area, run_area

__all__ = ["K_MAX", "build_row", "row_area", "neutral_count", "run_area", "area_code_sources"]
