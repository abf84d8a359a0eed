"""Host driver: a matrix product on the board over the UART link.

The transport is pluggable: :class:`Device` needs only an object with ``write(bytes)`` and
``read(n) -> bytes`` (returning fewer bytes, or none, on its read timeout).
:class:`SerialTransport` is the pyserial one; the simulation test drives the same
:meth:`Job.exchange` generator over the simulated UART pins.

The float side uses the golden model: :func:`sqhw.golden.quantize_weight`,
:func:`~sqhw.golden.quantize_activation`, :func:`~sqhw.golden.pack`, and
:func:`~sqhw.golden.descale` on the integers the board returns.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..cli import STAMP
from ..format import HWConfig
from ..link import protocol as P

__all__ = ["Job", "prepare_matmul", "finish_matmul", "Device", "SerialTransport", "matmul",
           "Build", "read_build"]


@dataclass(frozen=True)
class Build:
    """What the host needs from a bitstream build folder (``python -m sqhw.fpga build``).

    Attributes
    ----------
    cfg : HWConfig
        The core's configuration.
    board : str
    baud : int
        The UART rate the bitstream was built for.
    timeout_bits : int
        The link's truncation timeout, in bit times.
    """

    cfg: HWConfig
    board: str
    baud: int
    timeout_bits: int


def read_build(folder) -> Build:
    """The configuration and link settings of the bitstream build in ``folder``, from the
    ``report.json`` that ``python -m sqhw.fpga build`` writes there (``config``,
    ``digest``, ``board``, ``clock.baud``, ``link.timeout_bits``).

    Raises
    ------
    ValueError
        In one line, naming ``folder``: it does not exist, is not a folder, is not a build
        of ``python -m sqhw.fpga build`` (another tool's output, or no ``report.json``), or
        its ``report.json`` is unreadable, not JSON, lacks a field, holds a configuration
        that does not validate, or one whose digest is not the recorded one.
    """
    d = Path(folder)
    where = f"--build {folder}"
    if not d.exists():
        raise ValueError(f"{where}: no such folder; give a folder written by "
                         "python -m sqhw.fpga build")
    if not d.is_dir():
        raise ValueError(f"{where} is not a folder; give a folder written by "
                         "python -m sqhw.fpga build")
    stamp = d / STAMP
    tool = None
    try:
        if stamp.is_file():
            tool = (stamp.read_text().split() or [""])[0]
        text = (d / "report.json").read_text() if (d / "report.json").is_file() else None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{where} cannot be read ({getattr(e, 'strerror', None) or e})") \
            from None
    if tool not in (None, "fpga"):
        raise ValueError(f"{where} is an output of python -m sqhw.{tool}, not a bitstream "
                         "build; give a folder written by python -m sqhw.fpga build")
    if text is None:
        raise ValueError(f"{where} is not a bitstream build (no report.json); give a folder "
                         "written by python -m sqhw.fpga build")
    bad = f"{where}: report.json is corrupted"
    try:
        rep = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{bad} (not JSON: {e}); rebuild it with python -m sqhw.fpga "
                         "build") from None
    try:
        cfg = HWConfig.from_dict(rep["config"])
        digest, board = rep["digest"], rep["board"]
        baud, timeout_bits = int(rep["clock"]["baud"]), int(rep["link"]["timeout_bits"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
        raise ValueError(f"{bad} ({what}); rebuild it with python -m sqhw.fpga build") \
            from None
    if cfg.digest() != digest:
        raise ValueError(f"{bad} (its configuration's digest is {cfg.digest()}, not the "
                         f"recorded {digest}); rebuild it with python -m sqhw.fpga build")
    return Build(cfg, str(board), baud, timeout_bits)


@dataclass
class Job:
    """One prepared matrix product ``y = x @ w``.

    Attributes
    ----------
    cfg : HWConfig
    sq : SQTensor
        The quantized weight, N padded up to a multiple of ``cfg.rows`` with zero columns.
    image : bytes
        ``pack(sq)``: what is sent, tile by tile.
    x_int : torch.Tensor
        int32 [M, K] activation codes.
    x_scale : torch.Tensor
        float32 [M] per-token scales.
    n : int
        The real N (before padding).
    max_payload : int
    """

    cfg: object
    sq: object
    image: bytes
    x_int: object
    x_scale: object
    n: int
    max_payload: int = P.DEFAULT_MAX_PAYLOAD

    def exchange(self):
        """The frames of this job: see :func:`sqhw.link.protocol.job_exchange`."""
        return P.job_exchange(self.cfg, self.image, self.x_int.tolist(),
                              max_payload=self.max_payload)


def prepare_matmul(cfg, w, x, importance=None, *, max_payload=P.DEFAULT_MAX_PAYLOAD) -> Job:
    """Quantize ``w`` [K, N] and ``x`` [M, K] (floats) for the core of ``cfg``.

    Raises
    ------
    ValueError
        If K is not a multiple of the bank size or exceeds ``cfg.k_max``.
    """
    import torch

    from ..golden import pack, quantize_activation, quantize_weight
    K, N = w.shape
    b = cfg.fmt.bank_size
    if K % b or not b <= K <= cfg.k_max:
        raise ValueError(f"K must be a multiple of {b} in {b}..{cfg.k_max} for this core, "
                         f"not {K}")
    if x.dim() != 2 or x.shape[1] != K:
        raise ValueError(f"x must be [M, {K}], not {list(x.shape)}")
    pad = -N % cfg.rows
    wp = torch.cat([w.to(torch.float32), torch.zeros(K, pad)], dim=1) if pad else w
    imp = None
    if importance is not None:
        imp = torch.cat([importance, torch.zeros(K, pad)], dim=1) if pad else importance
    sq = quantize_weight(wp, cfg.fmt, importance=imp)
    x_int, x_scale = quantize_activation(x, cfg.act_bits)
    return Job(cfg, sq, pack(sq), x_int, x_scale, N, max_payload)


def finish_matmul(job: Job, results: list) -> tuple:
    """``(acc int64 [M, N], y float32 [M, N])`` from the :class:`~.protocol.Result` list of
    :meth:`Job.exchange` (tile by tile, token by token), de-scaled with
    :func:`sqhw.golden.descale`.

    Raises
    ------
    LinkError
        If the count is wrong or the core flagged a result as an error.
    """
    import torch

    from ..golden import descale
    M = job.x_int.shape[0]
    R = job.cfg.rows
    tiles = job.sq.shape[1] // R
    if len(results) != tiles * M:
        raise P.LinkError(f"expected {tiles * M} results, got {len(results)}")
    bad = [i for i, r in enumerate(results) if r.error]
    if bad:
        raise P.LinkError(f"the core flagged {len(bad)} results as errors (first: result "
                          f"{bad[0]}); read the STATUS bits (datasheet §8)")
    acc = torch.zeros(M, tiles * R, dtype=torch.int64)
    for i, r in enumerate(results):
        t, m = divmod(i, M)
        acc[m, t * R:(t + 1) * R] = torch.tensor(r.values, dtype=torch.int64)
    y = descale(acc, job.x_scale, job.sq)
    return acc[:, :job.n], y[:, :job.n]


class SerialTransport:
    """A pyserial port as a transport (8N1, no flow control)."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 0.05):
        import serial
        self._port = serial.Serial(port, baud, bytesize=8, parity="N", stopbits=1,
                                   timeout=timeout)

    def write(self, data: bytes) -> None:
        self._port.write(data)
        self._port.flush()

    def read(self, n: int) -> bytes:
        return self._port.read(n)

    def reset_input(self) -> None:
        self._port.reset_input_buffer()

    def close(self) -> None:
        self._port.close()


class Device:
    """The board, over a transport: stop-and-wait frames, RESULT frames collected.

    Parameters
    ----------
    transport
        ``write(bytes)`` and ``read(n) -> bytes``.
    cfg : HWConfig
        The configuration the bitstream was built for (checked by :meth:`check_config`).
    reply_timeout : float
        Seconds to wait for the reply to one frame.
    """

    def __init__(self, transport, cfg, reply_timeout: float = 2.0):
        self.transport = transport
        self.cfg = cfg
        self.reply_timeout = reply_timeout
        self._decoder = P.Decoder(types=P.DEVICE_TYPES)
        self._pending: list = []

    def replies(self) -> list:
        """Frames up to and including the next ACK, ERROR or STATUS reply."""
        got = []
        deadline = time.monotonic() + self.reply_timeout
        while True:
            while self._pending:
                f = self._pending.pop(0)
                got.append(f)
                if P.is_reply(f):
                    return got
            if time.monotonic() > deadline:
                raise P.LinkError(f"no reply within {self.reply_timeout} s (got {got!r}); "
                                  "check the port, the baud rate and the bitstream")
            self._pending += self._decoder.feed(self.transport.read(256))

    def exchange(self, frame: bytes) -> list:
        self.transport.write(frame)
        return self.replies()

    def run(self, gen):
        """Drive a generator of :func:`~.protocol.job_exchange`'s kind to its return value."""
        try:
            frame = next(gen)
            while True:
                frame = gen.send(self.exchange(frame))
        except StopIteration as stop:
            return stop.value

    def status(self) -> P.Status:
        replies = self.exchange(P.encode(P.T_STATUS))
        return P.decode_status(replies[-1])

    def check_config(self) -> P.Status:
        """Read STATUS and check the bitstream's config digest against ``cfg``.

        Raises
        ------
        LinkError
            On a digest mismatch.
        """
        st = self.status()
        if st.digest != self.cfg.digest():
            raise P.LinkError(f"the board runs config {st.digest}, not {self.cfg.digest()}; "
                              "pass the format options the bitstream was built with")
        return st


def matmul(device: Device, w, x, importance=None):
    """``y ≈ x @ w`` on the board: returns ``(y float32 [M, N], acc int64 [M, N], job)``."""
    job = prepare_matmul(device.cfg, w, x, importance)
    acc, y = finish_matmul(job, device.run(job.exchange()))
    return y, acc, job
