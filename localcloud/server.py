"""`make local`: the local cloud behind a server on 127.0.0.1, for the AWS CLI or boto3 with an endpoint URL.

    python -m localcloud.server [--port 4566] [--time-scale 1]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.request

from localcloud.cloud import LocalCloud


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
    print(json.dumps({"ready": True, "endpoint": endpoint, "api": cloud.api.url, "console": f"{cloud.api.url}/console",
                      "outputs": cloud.outputs}),
          flush=True)

    # The console's function starts cold now, in the background, rather than on the first page load.
    threading.Thread(target=_warm, args=(f"{cloud.api.url}/console",), name="warm-console", daemon=True).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
