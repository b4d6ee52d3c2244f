from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Wall:
    """Where epoch seconds come from for pacing (slots are aligned on them across processes), and how a sender
    waits for its next slot. The local cloud swaps in its compressed clock so provider rates hold in simulated
    seconds."""

    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)


wall = _Wall()


def epoch_seconds() -> float:
    return wall.time()


def sleep(seconds: float) -> None:
    wall.sleep(seconds)
