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
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "NOTIFICATIONS_TABLE": "-", "BORROWERS_TABLE": "-",
                       "DELIVERIES_TABLE": "-", "REVIEW_CASES_TABLE": "-", "POWERTOOLS_TRACE_DISABLED": "true",
                       "OPS_ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:-", "VERIFY_SECRET_ARN": ""}.items():
        os.environ.setdefault(key, value)
    spec = importlib.util.spec_from_file_location("borrower_api_app", ROOT / "functions" / "borrower_api" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
