"""One CPU for the local cloud's process.

The local cloud is one Python interpreter: its threads (every Lambda invocation, Step Functions execution, stream
and queue poller) take turns on the GIL, so the process never runs Python on more than one CPU at a time. Left to
the scheduler on a machine with several CPUs, the turns move between CPUs: a thread woken on another CPU takes the
GIL with cold caches, and the hand-over itself goes through the kernel across CPUs. On the 2-CPU machine the README's
figures come from, `make bench` ran faster and spent less CPU per change with its process held to one CPU (README,
"Measured figures").

So `LocalCloud.start` holds every thread of the process to one of the CPUs it may use (`pin`), and `stop` gives
them back (`unpin`). Which CPU: the test runner's worker number picks one (worker n, CPU n modulo their count), so
two workers never share one; otherwise the CPU the process runs on now. `LOCALCLOUD_CPUS=all` leaves the process
on every CPU it may use. A process already held to one CPU (`taskset -c 1 make demo`) stays where it was put.

A child process inherits the affinity of the thread that starts it: `all_cpus()` lets a child started under it
(a browser) run anywhere.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

ENV = "LOCALCLOUD_CPUS"

_found: set[int] | None = None  # the affinity the process had before `pin`, while pinned
_holders = 0  # local clouds running in this process (the last to stop unpins)
_lock = threading.Lock()


def _threads() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]  # no /proc: the calling thread only (threads started after it inherit its affinity)


def _set(cpus: set[int]) -> None:
    for tid in _threads():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


def _current_cpu() -> int | None:
    """The CPU this process last ran on (/proc/self/stat, field 39)."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None


def choose(cpus: set[int], worker: str | None, current: int | None) -> int:
    """The CPU to hold the process to: by test worker number (gw0, gw1...), else the current one, else the first."""
    ordered = sorted(cpus)
    if worker and worker.startswith("gw") and worker[2:].isdigit():
        return ordered[int(worker[2:]) % len(ordered)]
    return current if current in cpus else ordered[0]


def pin() -> int | None:
    """Hold every thread of this process to one CPU; the CPU, or None when the process is left as it is (one CPU
    only, no affinity on this platform, `LOCALCLOUD_CPUS=all`). Each call is matched by one `unpin`."""
    global _found, _holders
    with _lock:
        _holders += 1
        if _found is not None:
            return pinned()
        if not hasattr(os, "sched_setaffinity") or os.environ.get(ENV, "").lower() == "all":
            return None
        found = os.sched_getaffinity(0)
        if len(found) < 2:
            return None
        cpu = choose(found, os.environ.get("PYTEST_XDIST_WORKER"), _current_cpu())
        _found = set(found)
        _set({cpu})
        return cpu


def unpin() -> None:
    """The last of the `pin` calls ended: every thread gets back the CPUs the process had before."""
    global _found, _holders
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders == 0 and _found is not None:
            _set(_found)
            _found = None


def pinned() -> int | None:
    """The CPU the process is held to by `pin`, or None."""
    if _found is None:
        return None
    cpus = os.sched_getaffinity(0)
    return next(iter(cpus)) if len(cpus) == 1 else None


@contextlib.contextmanager
def all_cpus() -> Iterator[None]:
    """The calling thread may run on every CPU the process had before `pin` while this lasts: a child process it
    starts meanwhile (a browser, a server) inherits that, not the one CPU."""
    if _found is None:
        yield
        return
    held = os.sched_getaffinity(0)
    os.sched_setaffinity(0, _found)
    try:
        yield
    finally:
        os.sched_setaffinity(0, held)
