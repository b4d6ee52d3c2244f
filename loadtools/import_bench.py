"""Cold import of each pipeline handler against a bare `import boto3`, in fresh interpreters (`make bench-import`).

A Lambda cold start pays for the handler module's import before the first event. Each measurement runs in a new
Python process set up as Lambda would set it up (the function's code folder and the shared layer on the path, the
function's environment variables from template.yaml with its parameters' defaults, LAMBDA_TASK_ROOT set so
powertools' Tracer is live as under `Tracing: Active`), and times only the import statement, in CPU time of that
process (on a shared machine, wall time counts the other processes' load; an import is CPU-bound once its files are
cached, which the warm-up run ensures). The figure is the median of `--runs` processes; the goal (issue 7) is at
most 2x a bare `import boto3` measured the same way: each sample pairs the two in back-to-back processes, and the
median of the pairs' ratios is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from typing import Any

from localcloud.deploy import ROOT, load_sam

PIPELINE = ("stream_router", "prepare_notice", "send_notice", "await_receipt", "ingest_receipts",
            "open_review_case", "review_watchdog")
GOAL = 2.0

_TIMER = """
import sys, time
sys.path[:0] = {paths!r}
started = time.process_time()
{statement}
print(time.process_time() - started)
"""


def _value(value: Any, defaults: dict[str, str]) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return defaults.get(value["Ref"], "bench")
    return value if isinstance(value, str) else "bench"


def environments() -> dict[str, dict[str, str]]:
    """Each pipeline handler's environment variables, from the template (parameters at their defaults)."""
    sam = load_sam(ROOT / "template.yaml")
    defaults = {k: str(v.get("Default", "")) for k, v in sam.get("Parameters", {}).items()}
    common = sam.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    out = {}
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        folder = str(props.get("CodeUri", "")).removeprefix("functions/")
        if resource.get("Type") == "AWS::Serverless::Function" and folder in PIPELINE:
            variables = {**common, **props.get("Environment", {}).get("Variables", {})}
            out[folder] = {k: _value(v, defaults) for k, v in variables.items()}
    return out


def measure(statement: str, paths: list[str], env: dict[str, str]) -> float:
    code = _TIMER.format(paths=paths, statement=statement)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,  # noqa: S603
                            check=False)  # our own interpreter and a fixed statement
    if result.returncode != 0:
        raise RuntimeError(f"{statement!r} failed: {result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def lambda_env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**base, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "LAMBDA_TASK_ROOT": "/var/task",
            "AWS_LAMBDA_FUNCTION_NAME": "bench", "PYTHONDONTWRITEBYTECODE": "", **extra}


def run(runs: int) -> dict[str, Any]:
    """Each sample is a pair, `import boto3` then the handler, in back-to-back fresh processes: the ratio of the pair
    is what counts, so a change of the machine's load between samples moves both sides of it alike."""
    layer = str(ROOT / "layers" / "shared")
    baseline: list[float] = []
    handlers: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    envs = environments()
    for _ in range(runs):
        for name, env in envs.items():
            bare = measure("import boto3", [], lambda_env({}))
            took = measure("import app", [str(ROOT / "functions" / name), layer], lambda_env(env))
            baseline.append(bare)
            handlers.setdefault(name, []).append(took)
            ratios.setdefault(name, []).append(took / bare)
    return {"runs": runs, "python": sys.version.split()[0],
            "import_boto3_ms": round(statistics.median(baseline) * 1000, 1),
            "handlers": {name: {"import_ms": round(statistics.median(handlers[name]) * 1000, 1),
                                "ratio": round(statistics.median(ratios[name]), 2)} for name in sorted(handlers)},
            "goal_ratio": GOAL}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per module (the median is reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    # Warm the filesystem cache and compile the bytecode once, as a deployed package ships it compiled.
    run(1)
    report = run(args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"cold import (CPU time), median of {report['runs']} fresh-process pairs per handler "
          f"(Python {report['python']})")
    print(f"  import boto3{'':18} {report['import_boto3_ms']:7.1f} ms")
    for name, figures in report["handlers"].items():
        verdict = "ok" if figures["ratio"] <= GOAL else f"over {GOAL}x"
        print(f"  {name:<30} {figures['import_ms']:7.1f} ms  {figures['ratio']:4.2f}x  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
