"""`make bench`: end-to-end speed of the pipeline on the local cloud, in process.

Measures (1) the latency of one status change, write -> stream -> router -> execution -> SMS recorded,
sequentially, as a median over --latency-runs changes; and (2) the throughput of --changes status changes
written back to back (first write to last SMS recorded). Time compression is 0 (no retries happen on this path).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

from localcloud.cloud import LocalCloud


def _wait_for_sms(cloud: LocalCloud, count: int, timeout: float, poll_s: float) -> None:
    """Poll the End User Messaging SMS model's sent texts. A fine poll for the latency figure; a coarse one while
    200 changes are in flight, so the benchmark's own polling does not compete with the pipeline for the
    interpreter."""
    from localcloud.smsvoice import backend

    deadline = time.perf_counter() + timeout
    while len(backend.sent) < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{len(backend.sent)}/{count} SMS after {timeout}s")
        time.sleep(poll_s)


def _cpu_seconds() -> float:
    """The process's CPU time (every thread, user and system). Per change, it varies less with what else the machine
    is running than the wall-clock throughput does."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _texts() -> list:
    from localcloud.smsvoice import backend

    return list(backend.sent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--goal", type=float, default=25.0, help="changes per second the throughput must reach")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args(argv)

    cloud = LocalCloud(time_scale=0.0).start()
    try:
        borrowers, loans = cloud.table("BorrowersTableName"), cloud.table("LoansTableName")
        for i in range(50):
            borrowers.put_item(Item={"borrower_id": f"B-{i}", "name": f"Borrower {i}", "locale": "en-US",
                                     "phone": f"+86138{i:08d}", "email": f"b{i}@example.com"})

        def write(loan: str, n: int) -> None:
            loans.put_item(Item={"loan_id": loan, "borrower_id": f"B-{n % 50}", "status": "APPROVED",
                                 "version": 1, "updated_at": "2026-11-29T08:00:00Z", "amount": 1000 + n,
                                 "currency": "USD"})

        # warm-up: imports and cold starts are not what we measure
        write("warm-up", 0)
        _wait_for_sms(cloud, 1, 30, 0.01)
        cloud.wait_idle()

        latencies = []
        for n in range(args.latency_runs):
            sent = len(_texts())
            start = time.perf_counter()
            write(f"lat-{n}", n)
            _wait_for_sms(cloud, sent + 1, 30, 0.0005)
            latencies.append((time.perf_counter() - start) * 1000)
            cloud.wait_idle()

        sent = len(_texts())
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        for n in range(args.changes):
            write(f"tput-{n}", n)
        writes_done = time.perf_counter() - start
        _wait_for_sms(cloud, sent + args.changes, 300, 0.01)
        elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
        cloud.wait_idle()
        router_batches = [p.stats.batch_sizes for p in cloud.pump.pollers] if cloud.pump else []
        result = {
            "median_ms_per_change": round(statistics.median(latencies), 1),
            "p90_ms_per_change": round(sorted(latencies)[int(len(latencies) * 0.9) - 1], 1),
            "changes": args.changes,
            "throughput_seconds": round(elapsed, 2),
            "changes_per_second": round(args.changes / elapsed, 1),
            "writes_seconds": round(writes_done, 2),
            "cpu_ms_per_change": round(1000 * cpu / args.changes, 1),
            "router_invocations": sum(len(b) for b in router_batches),
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "held_to_cpu": cloud.cpu,  # the one CPU the local cloud held its process to (None: every CPU)
        }
    finally:
        cloud.stop()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"latency, write -> SMS recorded, {args.latency_runs} sequential changes: "
              f"median {result['median_ms_per_change']} ms, p90 {result['p90_ms_per_change']} ms")
        print(f"throughput, {args.changes} changes back to back: {result['throughput_seconds']} s = "
              f"{result['changes_per_second']} changes/s (goal >= {args.goal}); "
              f"{result['router_invocations']} router invocations in all")
        print(f"CPU: {result['cpu_ms_per_change']} ms of the process's CPU time per change while they were in flight")
        held = result["held_to_cpu"]
        print(f"machine: Python {result['python']}, {result['cpus']} CPUs"
              + (f" (the local cloud's process held to CPU {held})" if held is not None else " (every CPU)"))
    ok = result["changes_per_second"] >= args.goal
    if not ok:
        print(f"BELOW GOAL: {result['changes_per_second']} < {args.goal} changes/s", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
