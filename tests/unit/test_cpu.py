"""The local cloud holds its process to one CPU while it runs (localcloud/cpu.py), and gives it back.

Each check runs in a fresh interpreter started on every CPU this one may use: the test process itself may be held to
one already (by the local cloud the test run started)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localcloud import cpu
from localcloud.cpu import choose

ROOT = Path(__file__).resolve().parents[2]
needs_two = pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(cpu._found or os.sched_getaffinity(0)) < 2,
                               reason="needs two CPUs")


def _run(code: str, **env: str) -> dict:
    with cpu.all_cpus():
        ran = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                             env={**{k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", cpu.ENV)},
                                  "PYTHONPATH": str(ROOT), **env}, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout.strip().splitlines()[-1])


def test_the_cpu_is_the_test_workers_own_else_the_current_one():
    assert [choose({0, 1}, worker, None) for worker in ("gw0", "gw1", "gw2", "gw3")] == [0, 1, 0, 1]
    assert choose({2, 5}, "gw1", 2) == 5  # the worker's number wins over where the process runs now
    assert choose({0, 1, 2}, None, 2) == 2
    assert choose({0, 1}, "master", 7) == 0  # not a worker's name, and a CPU the process may not use: the first


@needs_two
def test_every_thread_is_held_to_one_cpu_until_the_last_holder_lets_go():
    seen = _run("""
        import json, os, threading
        from localcloud import cpu
        before = sorted(os.sched_getaffinity(0))
        stop = threading.Event()
        older = threading.Thread(target=stop.wait); older.start()  # started before the pin
        first, second = cpu.pin(), cpu.pin()  # two local clouds in one process
        held = [sorted(os.sched_getaffinity(older.native_id)), sorted(os.sched_getaffinity(0))]
        cpu.unpin()
        still = sorted(os.sched_getaffinity(older.native_id))
        cpu.unpin()
        after = [sorted(os.sched_getaffinity(older.native_id)), sorted(os.sched_getaffinity(0))]
        stop.set(); older.join()
        print(json.dumps({"before": before, "first": first, "second": second, "held": held, "still": still,
                          "after": after}))
    """, PYTEST_XDIST_WORKER="gw1")
    cpus = seen["before"]
    assert seen["first"] == seen["second"] == cpus[1]
    assert seen["held"] == [[cpus[1]], [cpus[1]]]
    assert seen["still"] == [cpus[1]]  # one local cloud still runs
    assert seen["after"] == [cpus, cpus]


@needs_two
def test_a_child_started_under_all_cpus_runs_anywhere_and_others_stay_on_the_one():
    seen = _run("""
        import json, os, subprocess, sys
        from localcloud import cpu
        cpu.pin()
        ask = [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"]
        held = subprocess.run(ask, capture_output=True, text=True).stdout.strip()
        with cpu.all_cpus():
            free = subprocess.run(ask, capture_output=True, text=True).stdout.strip()
        print(json.dumps({"held": held, "free": free, "main": sorted(os.sched_getaffinity(0))}))
    """)
    assert len(json.loads(seen["held"])) == 1 and seen["main"] == json.loads(seen["held"])
    assert len(json.loads(seen["free"])) >= 2


@needs_two
def test_localcloud_cpus_all_leaves_the_process_on_every_cpu():
    seen = _run("""
        import json, os
        from localcloud import cpu
        print(json.dumps({"pinned": cpu.pin(), "cpus": sorted(os.sched_getaffinity(0))}))
    """, LOCALCLOUD_CPUS="all")
    assert seen["pinned"] is None and len(seen["cpus"]) >= 2


def test_a_running_local_cloud_holds_its_process_to_its_cpu(cloud):
    if cloud.cpu is None:  # left on every CPU: asked so, or there is only one
        assert os.environ.get(cpu.ENV) == "all" or len(os.sched_getaffinity(0)) == 1
    else:
        assert os.sched_getaffinity(0) == {cloud.cpu} == {cpu.pinned()}
