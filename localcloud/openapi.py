"""`make openapi`: write docs/openapi.json, the borrower API's OpenAPI document, generated from the handler's routes
and models (powertools event handler). `--check` fails when the committed file is out of date."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "openapi.json"


def generate() -> dict:
    """Import the handler as Lambda would (it reads its signing secret at start-up: a local one, in moto)."""
    from moto import mock_aws

    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "NOTIFICATIONS_TABLE": "-", "BORROWERS_TABLE": "-",
                       "DELIVERIES_TABLE": "-", "REVIEW_CASES_TABLE": "-", "LIMITS_TABLE": "-",
                       "POWERTOOLS_TRACE_DISABLED": "true",
                       "OPS_ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:-"}.items():
        os.environ.setdefault(key, value)
    with mock_aws():
        import boto3

        secret = boto3.client("secretsmanager", region_name=os.environ["AWS_DEFAULT_REGION"]).create_secret(
            Name="openapi-document", SecretString="only-for-the-document")
        saved = os.environ.get("VERIFY_SECRET_ARN")
        os.environ["VERIFY_SECRET_ARN"] = secret["ARN"]
        try:
            spec = importlib.util.spec_from_file_location("borrower_api_app",
                                                          ROOT / "functions" / "borrower_api" / "app.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            if saved is None:
                os.environ.pop("VERIFY_SECRET_ARN", None)
            else:
                os.environ["VERIFY_SECRET_ARN"] = saved
    return module.openapi_document()


def main(argv: list[str]) -> int:
    document = json.dumps(generate(), indent=2, sort_keys=True) + "\n"
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != document:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run make openapi", file=sys.stderr)
            return 1
        print(f"{TARGET.relative_to(ROOT)} is up to date")
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(document)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
