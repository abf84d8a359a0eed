"""Host side of the UART link: the protocol (:mod:`.protocol`, shared with the gateware and
the testbench) and the driver (:mod:`.driver`, ``python -m sqhw.host``)."""
