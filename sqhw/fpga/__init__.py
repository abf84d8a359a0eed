"""FPGA board tops and the build driver (``python -m sqhw.fpga build``).

- :mod:`.link`: the UART host link gateware and :class:`~.link.LinkTop` (link + core);
- :mod:`.boards`: board tops (PLL, pins) for the ULX3S-85F and the iCEBreaker;
- :mod:`.build`: synthesis, place and route, bitstream and the report.
"""
