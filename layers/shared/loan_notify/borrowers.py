from __future__ import annotations

from typing import Any

from loan_notify.errors import BorrowerNotFound
from loan_notify.models import Borrower


class Borrowers:
    """Repository over the Borrowers table (a boto3 Table resource is passed in)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def exists(self, borrower_id: str) -> bool:
        item = self._table.get_item(Key={"borrower_id": borrower_id}, ProjectionExpression="borrower_id").get("Item")
        return item is not None

    def get(self, borrower_id: str) -> Borrower:
        item = self._table.get_item(Key={"borrower_id": borrower_id}).get("Item")
        if item is None:
            raise BorrowerNotFound(f"borrower {borrower_id} does not exist")
        return Borrower.model_validate(item)
