"""Run the report's tasks: cache lookups in this process, the rest on local worker
processes (``concurrent.futures``) or a Dask cluster, with progress on stderr."""

import multiprocessing
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

from .cache import Cache
from .stages import Task, run_task

__all__ = ["Progress", "run_tasks"]


class Progress:
    """One line per event on ``stream``: elapsed time, ``i/N``, stage and configurations."""

    def __init__(self, total: int, stream=None):
        self.total, self.done = total, 0
        self.t0 = time.monotonic()
        self.stream = stream if stream is not None else sys.stderr

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"

    def say(self, msg: str) -> None:
        print(f"[sqhw.report {self.elapsed()}] {msg}", file=self.stream, flush=True)

    def step(self, msg: str) -> None:
        self.done += 1
        self.say(f"{self.done}/{self.total} {msg}")


def _drain(futures: dict, completed):
    """Yield ``(index, outcome, error)`` for ``futures`` (future → task index) in the order
    ``completed`` (``concurrent.futures.as_completed`` or Dask's) hands them back."""
    for fut in completed(futures):
        try:
            yield futures[fut], fut.result(), None
        except Exception as e:          # noqa: BLE001 -- reported per task
            yield futures[fut], None, e


def _dask_map(client, tasks: list[Task]):
    """Yield ``(index, outcome, error)`` as the Dask cluster of ``client`` finishes."""
    from distributed import as_completed as dask_completed

    yield from _drain({client.submit(run_task, t, pure=False): i for i, t in enumerate(tasks)},
                      dask_completed)


def _local_map(jobs: int, tasks: list[Task]):
    """Yield ``(index, outcome, error)`` as local worker processes finish."""
    # spawn: workers start clean (no inherited torch thread pools or open files).
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        yield from _drain({pool.submit(run_task, t): i for i, t in enumerate(tasks)},
                          as_completed)


def run_tasks(tasks: list[Task], cache: Cache, *, jobs: int = 2, client=None,
              names: Callable[[Task], str] = lambda t: t["label"],
              progress: Progress | None = None) -> list[dict]:
    """Run every task that is not cached, store each result as soon as it arrives.

    Parameters
    ----------
    tasks : list of Task
        Distinct keys (the caller removes duplicates).
    cache : Cache
    jobs : int
        Local worker processes (ignored with ``scheduler``).
    client : distributed.Client, optional
        A connected Dask client: the tasks go to its cluster instead.
    names : callable
        The configuration names a task serves, for progress lines.

    Returns
    -------
    list of dict
        Per task, in order: ``{"result", "seconds", "computed_at", "cached"}`` or
        ``{"error": message, "cached": False}``.
    """
    progress = progress or Progress(len(tasks))
    out: list[dict | None] = [None] * len(tasks)
    todo = []
    for i, t in enumerate(tasks):
        entry = cache.get(t["stage"], t["key"], t["label"])
        if entry is not None:
            out[i] = {"result": entry["result"], "seconds": entry["seconds"],
                      "computed_at": entry["computed_at"], "cached": True}
            progress.step(f"{t['stage']} {names(t)}: cached")
        else:
            todo.append(i)
    if todo:
        where = (f"the Dask scheduler at {client.scheduler.address}" if client is not None
                 else f"{min(jobs, len(todo))} local process(es)")
        progress.say(f"running {len(todo)} task(s) on {where}: "
                     + ", ".join(f"{tasks[i]['stage']} {names(tasks[i])}" for i in todo))
        sub = [tasks[i] for i in todo]
        stream = _dask_map(client, sub) if client is not None else _local_map(jobs, sub)
        for j, outcome, error in stream:
            i, t = todo[j], tasks[todo[j]]
            if error is not None:
                text = str(error).strip()
                msg = f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"
                out[i] = {"error": msg, "cached": False}
                progress.step(f"{t['stage']} {names(t)}: FAILED ({msg})")
                continue
            entry = cache.put(t["stage"], t["key"], outcome["result"], outcome["seconds"],
                              t["label"], outcome["ran_on"])
            out[i] = {"result": entry["result"], "seconds": entry["seconds"],
                      "computed_at": entry["computed_at"], "cached": False}
            progress.step(f"{t['stage']} {names(t)}: done in {outcome['seconds']:.1f} s")
    return out
