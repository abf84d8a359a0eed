"""The UART host-link protocol: frames, their encoding and decoding, and the job planner.

This module is the one definition of the protocol (``docs/host-link.md`` describes it byte
by byte). The gateware (:mod:`sqhw.link.gateware`), the host driver (:mod:`sqhw.host.driver`)
and the testbench (``verif/fpga/test_board_sim.py``) all import it, and the CRC is the same
:class:`amaranth.lib.crc.Parameters` object whose ``compute()`` the host uses and whose
``create()`` the gateware instantiates, so the two agree by construction.

No I/O happens here (a "sans-I/O" design): :func:`job_exchange` is a generator that yields
the bytes of each frame to send and is sent back the frames the device replied with, so a
blocking serial port and an ``async`` cocotb testbench drive the same code.

Frame (all multi-byte fields little-endian)::

    SYNC (0xA5) | TYPE (1) | LEN (2) | PAYLOAD (LEN bytes) | CRC-16 (2)

The CRC is CRC-16/IBM-3740 (also called CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no
reflection, no final XOR) over TYPE, LEN and PAYLOAD.
"""

import struct
from dataclasses import dataclass

from amaranth.lib import crc

__all__ = [
    "SYNC", "CRC", "T_WEIGHTS", "T_ACTS", "T_STATUS", "T_ACK", "T_ERROR", "T_RESULT",
    "T_STATUS_REPLY", "HOST_TYPES", "DEVICE_TYPES", "ERR_CRC", "ERR_TIMEOUT", "ERR_LENGTH",
    "ERR_TYPE", "ERROR_NAMES", "F_LAST", "F_USER", "F_ERROR", "DEFAULT_MAX_PAYLOAD",
    "Frame", "LinkError", "encode", "Decoder", "check_config", "beat_sizes", "weight_frames",
    "activation_frames", "Result", "decode_result", "Status", "decode_status",
    "digest_bytes", "job_exchange", "is_reply", "pack_bank",
]

SYNC = 0xA5

#: The CRC of every frame. ``CRC.compute(bytes)`` on the host, ``CRC.create()`` in gateware.
CRC = crc.catalog.CRC16_IBM_3740(data_width=8)

# Host -> device frame types.
T_WEIGHTS = 0x01   #: payload: n x [flags, record (record_bytes)]; flags bit 0 = tlast
T_ACTS = 0x02      #: payload: n x [flags, bank (act bytes)]; bit 0 = tlast, bit 1 = tuser
T_STATUS = 0x03    #: payload: empty; asks for a STATUS reply
# Device -> host frame types.
T_ACK = 0x81           #: payload: [type acknowledged]; every beat of it reached the core
T_ERROR = 0x82         #: payload: [error code, type of the rejected frame or 0]
T_RESULT = 0x83        #: payload: [flags, result (result bytes)]; flags bit 0 = error
T_STATUS_REPLY = 0x84  #: payload: [core status, link errors, config digest (6 bytes)]

HOST_TYPES = (T_WEIGHTS, T_ACTS, T_STATUS)
DEVICE_TYPES = (T_ACK, T_ERROR, T_RESULT, T_STATUS_REPLY)

ERR_CRC = 1      #: the CRC did not match
ERR_TIMEOUT = 2  #: the frame stopped before its end (no byte for ``timeout_bits`` bit times)
ERR_LENGTH = 3   #: LEN is above the buffer, or not a whole number of beats
ERR_TYPE = 4     #: unknown frame type
ERROR_NAMES = {ERR_CRC: "bad CRC", ERR_TIMEOUT: "truncated frame (timeout)",
               ERR_LENGTH: "bad length", ERR_TYPE: "unknown type"}

F_LAST = 0x01    #: beat flag: tlast
F_USER = 0x02    #: beat flag: tuser (activations: last token of the tile)
F_ERROR = 0x01   #: result flag: the core marked this result invalid (tuser)

#: Payload bytes the link buffers by default (one block RAM on ECP5 and iCE40).
DEFAULT_MAX_PAYLOAD = 256


class LinkError(RuntimeError):
    """The device rejected a frame, or replied with something unexpected."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its ``type`` and ``payload``."""
    type: int
    payload: bytes

    def __repr__(self):
        return f"Frame(type=0x{self.type:02x}, payload={self.payload.hex()})"


def encode(ftype: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    if not 0 <= ftype <= 0xFF:
        raise ValueError(f"frame type must be a byte, not {ftype}")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload must be at most 65535 bytes, not {len(payload)}")
    body = bytes([ftype]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SYNC]) + body + struct.pack("<H", CRC.compute(body))


class Decoder:
    """Incremental frame decoder: :meth:`feed` bytes, get whole frames back.

    Bytes before a SYNC are skipped. A frame whose CRC does not match, whose LEN is above
    ``max_payload`` or whose type is not in ``types`` (when given) is dropped and counted in
    :attr:`bad_frames`; the decoder then resynchronises on the next SYNC after that frame's
    first byte. The host passes ``types=DEVICE_TYPES``, so a stray SYNC in noise rarely makes
    it wait for a long bogus frame.
    """

    def __init__(self, max_payload: int = 0xFFFF, types=None):
        self._buf = bytearray()
        self.max_payload = max_payload
        self.types = None if types is None else frozenset(types)
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out = []
        while True:
            start = self._buf.find(bytes([SYNC]))
            if start < 0:
                self._buf.clear()
                return out
            del self._buf[:start]
            if len(self._buf) < 4:
                return out
            length = struct.unpack_from("<H", self._buf, 2)[0]
            if length > self.max_payload or (self.types is not None
                                              and self._buf[1] not in self.types):
                self.bad_frames += 1
                del self._buf[:1]
                continue
            end = 4 + length + 2
            if len(self._buf) < end:
                return out
            body = bytes(self._buf[1:4 + length])
            (got,) = struct.unpack_from("<H", self._buf, 4 + length)
            if CRC.compute(body) != got:
                self.bad_frames += 1
                del self._buf[:1]
                continue
            out.append(Frame(body[0], body[3:]))
            del self._buf[:end]


# -- the core's beats -----------------------------------------------------------------------

def check_config(cfg) -> None:
    """Raise ValueError if the protocol cannot carry ``cfg``'s core: it speaks the weight
    mode's payloads (``pack`` images, R columns of SQ records) only."""
    if cfg.is_act_mode:
        raise ValueError("the UART host link carries weight-mode cores only; the "
                         "activation-mode core (datasheet §10) has no board link yet: "
                         "generate its RTL with python -m sqhw.gen --operand activation")


def beat_sizes(cfg) -> dict[str, int]:
    """Bytes of one beat's data for ``cfg`` (an :class:`~sqhw.format.HWConfig`):
    ``weights`` (record_bytes), ``acts`` (ceil(b·a/8)), ``result`` (ceil(R·acc/8)).

    Raises
    ------
    ValueError
        If the protocol cannot carry ``cfg`` (:func:`check_config`).
    """
    check_config(cfg)
    return {"weights": cfg.weight_data_bits // 8, "acts": cfg.act_data_bits // 8,
            "result": cfg.result_data_bits // 8}


def _chunk_frames(ftype: int, beats: list[bytes], max_payload: int) -> list[bytes]:
    size = len(beats[0]) if beats else 1
    per = max_payload // size
    if per < 1:
        raise ValueError(f"a beat of {size} bytes does not fit a {max_payload}-byte payload")
    return [encode(ftype, b"".join(beats[i:i + per])) for i in range(0, len(beats), per)]


def weight_frames(cfg, tile: bytes, nb: int,
                  max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[bytes]:
    """WEIGHTS frames carrying one tile: ``R`` columns of ``nb`` records (a contiguous
    slice of a ``pack`` image), ``tlast`` on each column's last record."""
    rb = cfg.fmt.record_bytes
    if not 1 <= nb <= cfg.nb_max:
        raise ValueError(f"nb must be in 1..{cfg.nb_max}, not {nb}")
    if len(tile) != cfg.rows * nb * rb:
        raise ValueError(f"a tile of {cfg.rows} columns x {nb} records x {rb} bytes is "
                         f"{cfg.rows * nb * rb} bytes, not {len(tile)}")
    beats = []
    for i in range(cfg.rows * nb):
        flags = F_LAST if i % nb == nb - 1 else 0
        beats.append(bytes([flags]) + tile[i * rb:(i + 1) * rb])
    return _chunk_frames(T_WEIGHTS, beats, max_payload)


def pack_bank(values, act_bits: int, nbytes: int) -> bytes:
    """One activation bank: element ``i`` at bits ``[i·a, (i+1)·a)``, two's complement."""
    word = 0
    mask = (1 << act_bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * act_bits)
    return word.to_bytes(nbytes, "little")


def activation_frames(cfg, x_rows, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[bytes]:
    """ACTS frames for tokens ``x_rows`` (M lists of K = nb·b integer codes): each token is
    nb beats with ``tlast`` on its last; the last token carries ``tuser`` (frees the tile)."""
    b = cfg.fmt.bank_size
    nbytes = cfg.act_data_bits // 8
    beats = []
    rows = [list(r) for r in x_rows]
    for m, row in enumerate(rows):
        if not row or len(row) % b:
            raise ValueError(f"a token must have a multiple of {b} codes, not {len(row)}")
        nb = len(row) // b
        for j in range(nb):
            flags = (F_LAST if j == nb - 1 else 0) | (
                F_USER if j == nb - 1 and m == len(rows) - 1 else 0)
            beats.append(bytes([flags]) + pack_bank(row[j * b:(j + 1) * b], cfg.act_bits,
                                                    nbytes))
    return _chunk_frames(T_ACTS, beats, max_payload)


@dataclass(frozen=True)
class Result:
    """One result beat: ``values`` (R signed integers) and ``error`` (the core's tuser)."""
    values: tuple[int, ...]
    error: bool


def decode_result(cfg, frame: Frame) -> Result:
    """The R signed results of a RESULT frame (row r at bits ``[r·acc, (r+1)·acc)``)."""
    nbytes = cfg.result_data_bits // 8
    if frame.type != T_RESULT or len(frame.payload) != 1 + nbytes:
        raise LinkError(f"expected a RESULT frame of {1 + nbytes} bytes, got {frame!r}")
    word = int.from_bytes(frame.payload[1:], "little")
    acc = cfg.acc_bits
    vals = []
    for r in range(cfg.rows):
        v = (word >> (r * acc)) & ((1 << acc) - 1)
        vals.append(v - (1 << acc) if v >> (acc - 1) else v)
    return Result(tuple(vals), bool(frame.payload[0] & F_ERROR))


@dataclass(frozen=True)
class Status:
    """A STATUS reply: the core's sticky ``status`` bits (datasheet §8), the link's error
    count (saturating at 255) and the first 6 bytes of the configuration digest."""
    core: int
    link_errors: int
    digest: str


def digest_bytes(cfg) -> bytes:
    """The 6 bytes the device reports for ``cfg``: its 12-hex-digit digest."""
    return bytes.fromhex(cfg.digest())


def decode_status(frame: Frame) -> Status:
    if frame.type != T_STATUS_REPLY or len(frame.payload) != 8:
        raise LinkError(f"expected a STATUS reply of 8 bytes, got {frame!r}")
    p = frame.payload
    return Status(p[0], p[1], p[2:8].hex())


# -- the job, sans I/O ---------------------------------------------------------------------

def is_reply(frame: Frame) -> bool:
    """True for the frame that ends the device's answer to one host frame (ACK, ERROR or
    STATUS reply); RESULT frames may come before it."""
    return frame.type in (T_ACK, T_ERROR, T_STATUS_REPLY)


def _expect_ack(replies: list[Frame], ftype: int, results: list[Frame]) -> None:
    for f in replies:
        if f.type == T_RESULT:
            results.append(f)
        elif f.type == T_ACK and f.payload[:1] == bytes([ftype]):
            return
        elif f.type == T_ERROR:
            code = f.payload[0] if f.payload else 0
            raise LinkError(f"device rejected a frame of type 0x{ftype:02x}: "
                            f"{ERROR_NAMES.get(code, f'error {code}')}")
    raise LinkError(f"no ACK for a frame of type 0x{ftype:02x}; got {replies!r}")


def job_exchange(cfg, image: bytes, x_int, *, max_payload: int = DEFAULT_MAX_PAYLOAD):
    """A whole matrix product, as a generator of frames to send.

    Parameters
    ----------
    cfg : HWConfig
    image : bytes
        The ``pack`` image of a weight ``[K, N]`` with N a multiple of ``cfg.rows`` (pad
        with zero columns) and K ≤ ``cfg.k_max``.
    x_int : sequence of sequences of int
        M tokens of K activation codes.

    Yields
    ------
    bytes
        One frame to send. The caller sends it, reads frames until an ACK or ERROR arrives
        and sends back the list of every frame read (RESULT frames included).

    Returns
    -------
    list of Result
        ``N / R`` tiles x M results, tile by tile (``StopIteration.value``).

    Raises
    ------
    LinkError
        If the device rejects a frame or the result count is wrong.
    """
    rows = [list(map(int, r)) for r in x_int]
    if not rows:
        raise ValueError("x_int must have at least one token")
    K = len(rows[0])
    b, R, rb = cfg.fmt.bank_size, cfg.rows, cfg.fmt.record_bytes
    if K % b or not b <= K <= cfg.k_max:
        raise ValueError(f"K must be a multiple of {b} in {b}..{cfg.k_max}, not {K}")
    nb = K // b
    col_bytes = nb * rb
    if len(image) % (col_bytes * R):
        raise ValueError(f"the image ({len(image)} bytes) is not a whole number of tiles of "
                         f"{R} columns x {col_bytes} bytes; pad N to a multiple of {R}")
    tiles = len(image) // (col_bytes * R)
    results: list[Frame] = []
    act = activation_frames(cfg, rows, max_payload)
    for t in range(tiles):
        tile = image[t * R * col_bytes:(t + 1) * R * col_bytes]
        for fr in weight_frames(cfg, tile, nb, max_payload):
            _expect_ack((yield fr), T_WEIGHTS, results)
        for fr in act:
            _expect_ack((yield fr), T_ACTS, results)
    want = tiles * len(rows)
    while len(results) < want:
        # The results of the last tokens can trail the last ACK: a STATUS request (answered
        # after the results already queued) collects them.
        before = len(results)
        replies = yield encode(T_STATUS)
        results += [f for f in replies if f.type == T_RESULT]
        if len(results) == before:
            break
    if len(results) != want:
        raise LinkError(f"expected {want} results, got {len(results)}")
    return [decode_result(cfg, f) for f in results]
