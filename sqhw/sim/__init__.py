"""Simulation engine: Verilator runs of the generated core.

- :mod:`.bulk`: the bulk-stimulus throughput path, ``sqhw_top`` inside the SystemVerilog
  testbench ``sqhw_bulk_tb.sv`` (package data) under ``verilator --binary``, no Python in
  the per-cycle loop; jobs, stimulus files, cached builds, runs and the bit-exact check
  against the golden model.
- :mod:`.harness`: cached Verilator builds for cocotb and cocotb runs with seeds, waves and
  replay hints (the testbenches in ``verif/`` and the bench's per-cycle baseline use it).
- :mod:`.cocotb_pokes`: that baseline, a cocotb module driving the bulk job from Python.
- :mod:`.board`: the simulated board of ``python -m sqhw.host --port sim``, the link
  gateware and core (:class:`sqhw.link.gateware.LinkTop`) under Verilator with its UART
  pins on a pipe.

Importing this package loads nothing heavy; import the modules.
"""

__all__ = ["bulk", "harness", "board"]
