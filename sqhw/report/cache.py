"""The result cache: one JSON file per (stage, key), written atomically.

A key is a dict of everything a result depends on (configuration digest, PTQ method,
corpus subset, tool versions, a hash of the code that computes it). The file name is
``<stage>-<label>-<12 hex digits of the key's SHA-256>.json``; the file holds the key itself,
and a lookup only hits when the stored key is equal, so a stale or foreign file is never
taken for a result.
"""

import json
import math
import os
import re
import tempfile
import time
from pathlib import Path

from ..format import canonical_digest

__all__ = ["Cache", "atomic_write", "finite"]


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so ``path`` is either the old file or the whole new one."""
    path = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite(x):
    """A copy of ``x`` fit for strict JSON: a non-finite float (an exact layer's SNR is
    infinite) becomes None."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class Cache:
    """Results of the report's stages under ``root``.

    Parameters
    ----------
    root : Path
        The cache folder (created if missing).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, stage: str, key: dict, label: str = "") -> Path:
        slug = re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_")[:40]
        name = f"{stage}-{slug}-{canonical_digest(key)}" if slug else \
            f"{stage}-{canonical_digest(key)}"
        return self.root / f"{name}.json"

    def get(self, stage: str, key: dict, label: str = "") -> dict | None:
        """The stored entry (``key``, ``result``, ``computed_at``, ``seconds``) or None."""
        path = self.path(stage, key, label)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if entry.get("stage") != stage or entry.get("key") != json.loads(json.dumps(key)):
            return None
        return entry

    def put(self, stage: str, key: dict, result: dict, seconds: float, label: str = "",
            ran_on: str | None = None) -> dict:
        """Store ``result`` (computed in ``seconds`` by ``ran_on``, ``host:pid``) and return
        the entry."""
        entry = {"stage": stage, "key": key, "result": finite(result), "seconds": round(seconds, 3),
                 "ran_on": ran_on,
                 "computed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                 "computed_ns": time.time_ns()}
        atomic_write(self.path(stage, key, label),
                     json.dumps(entry, indent=1, sort_keys=True, allow_nan=False) + "\n")
        return entry
