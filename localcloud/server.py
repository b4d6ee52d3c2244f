"""`make local`: the local cloud behind a server on 127.0.0.1, for the AWS CLI or boto3 with an endpoint URL.

    python -m localcloud.server [--port 4566] [--time-scale 1] [--state-file .loan-notify-local.json]

While it runs, the state file (in the directory it was started from) tells the ops command where it listens;
it is removed when the server stops.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.request
from pathlib import Path

from localcloud.cloud import LocalCloud

STATE_FILE = ".loan-notify-local.json"  # loan_notify_ops.stack reads it


def _warm(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - our own http URL
            answer.read()
    except OSError as err:  # the page still works, only its first load is slower
        print(f"warming the review console failed: {err}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--api-port", type=int, default=None, help="borrower API port (default: --port + 1)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="Retry/Wait sleep factor: 1 is faithful, 0 skips every wait")
    parser.add_argument("--stack-name", default="loan-notify-local")
    parser.add_argument("--echo-logs", action="store_true", help="print every Lambda log line to stderr")
    parser.add_argument("--state-file", default=STATE_FILE,
                        help="where to say where this server listens, for the ops command ('' for nowhere)")
    args = parser.parse_args(argv)

    api_port = args.api_port if args.api_port is not None else args.port + 1
    cloud = LocalCloud(server=True, port=args.port, time_scale=args.time_scale, stack_name=args.stack_name,
                       echo_logs=args.echo_logs, api_port=api_port).start()
    endpoint = cloud.endpoint_url
    print(f"loan-notify local cloud listening on {endpoint}", flush=True)
    print(f"borrower API on {cloud.api.url} (get a token: curl -s -X POST {cloud.api.url}/_local/token "
          """-d '{"sub":"<borrower_id>"}')""", flush=True)
    print(f"review console on {cloud.api.url}/console (sign in there with any name: the local cloud issues an ops "
          f"token; or curl -s -X POST {cloud.api.url}/_local/ops-token -d '{{\"sub\":\"<your name>\"}}')",
          flush=True)
    print(f"stack {cloud.stack_name} outputs:", flush=True)
    for key, value in sorted(cloud.outputs.items()):
        print(f"  {key:24} {value}", flush=True)
    if cloud.unsupported:
        print("not created by the local cloud (moto has no CloudFormation support for them):", flush=True)
        for item in cloud.unsupported:
            print(f"  {item}", flush=True)
    print(f"try: aws --endpoint-url {endpoint} cloudformation describe-stacks --stack-name {cloud.stack_name}",
          flush=True)
    if args.state_file:
        print(f"ops: loan-notify-ops executions list   (finds this server through {args.state_file} while it runs)",
              flush=True)
    print(json.dumps({"ready": True, "endpoint": endpoint, "api": cloud.api.url, "console": f"{cloud.api.url}/console",
                      "outputs": cloud.outputs}),
          flush=True)

    state = Path(args.state_file) if args.state_file else None
    if state is not None:
        state.write_text(json.dumps({"endpoint": endpoint, "api": cloud.api.url, "stack_name": cloud.stack_name,
                                     "region": cloud.region, "time_scale": args.time_scale, "pid": os.getpid()}))
    # The console's function starts cold now, in the background, rather than on the first page load.
    threading.Thread(target=_warm, args=(f"{cloud.api.url}/console",), name="warm-console", daemon=True).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        if state is not None:
            state.unlink(missing_ok=True)
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
