"""The cocotb build/run harness now lives in the package, :mod:`sqhw.sim.harness`; this module
re-exports it so that ``from verif.harness import run_cocotb`` keeps working."""

from sqhw.sim.harness import *  # noqa: F403
from sqhw.sim.harness import __all__  # noqa: F401
