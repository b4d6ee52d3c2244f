"""Stream images in DynamoDB JSON, as the Loans stream carries them."""

from __future__ import annotations

from typing import Any


def loan_image(loan_id: str = "L-1", borrower_id: str = "B-1", status: str = "APPROVED", version: int = 2,
               **extra: Any) -> dict[str, Any]:
    image: dict[str, Any] = {
        "loan_id": {"S": loan_id},
        "borrower_id": {"S": borrower_id},
        "status": {"S": status},
        "updated_at": {"S": "2026-11-29T08:00:00Z"},
        "version": {"N": str(version)},
    }
    for key, value in extra.items():
        image[key] = {"N": str(value)} if isinstance(value, int | float) else {"S": str(value)}
    return image


def stream_record(new: dict[str, Any] | None, old: dict[str, Any] | None = None, sequence: int = 1,
                  event_name: str | None = None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {"Keys": {"loan_id": (new or old or {}).get("loan_id", {"S": "?"})},
                                "SequenceNumber": str(sequence), "SizeBytes": 100,
                                "StreamViewType": "NEW_AND_OLD_IMAGES", "ApproximateCreationDateTime": 1795900000.0}
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {"eventID": f"evt-{sequence}", "eventName": event_name or ("MODIFY" if old else "INSERT"),
            "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": dynamodb,
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Loans/stream/2026-11-29T00:00:00.000"}
