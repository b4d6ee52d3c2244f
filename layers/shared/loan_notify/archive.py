"""Archive an evidence export where nobody can change it: an S3 bucket with Object Lock in compliance mode.

The bucket (template: EvidenceArchiveBucket) locks every new object version for its default retention
(EvidenceRetentionDays): until then no one, the account's root user included, can delete or overwrite that
version; writing the same key again only adds a version. The export carries each notice's chain head, so the
archive also anchors the ledger's hash chains at the time it was written.
"""

from __future__ import annotations

import json
from typing import Any


def archive_key(evidence: dict[str, Any]) -> str:
    stamp = evidence["generated_at"].replace(":", "").replace("-", "")
    return f"evidence/{evidence['loan_id']}/{stamp}.json"


def archive(evidence: dict[str, Any], *, s3: Any, bucket: str) -> dict[str, Any]:
    """Write the export (one new locked version) and return where, which version, and until when it is locked."""
    key = archive_key(evidence)
    body = json.dumps(evidence, indent=2, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                        ChecksumAlgorithm="SHA256")  # Object Lock requires an integrity checksum on the upload
    head = s3.head_object(Bucket=bucket, Key=key, VersionId=put["VersionId"])
    if head.get("ObjectLockMode") != "COMPLIANCE":
        raise RuntimeError(f"s3://{bucket}/{key} was written without a compliance-mode lock "
                           f"({head.get('ObjectLockMode')}): check the bucket's Object Lock configuration")
    retain_until = head.get("ObjectLockRetainUntilDate")
    return {"bucket": bucket, "key": key, "version_id": put["VersionId"], "mode": head["ObjectLockMode"],
            "retain_until": retain_until.isoformat() if hasattr(retain_until, "isoformat") else retain_until,
            "sha256": put.get("ChecksumSHA256")}


def archived_heads(loan_id: str, *, s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every archived export of the loan (every version of every key), with the chain heads it recorded:
    [{"where": "s3://bucket/key?versionId=...", "heads": {notification_id: (entries, head)}}]."""
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=f"evidence/{loan_id}/"):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
            try:
                exported = json.loads(body)
            except ValueError:
                continue  # not an export (nothing this tool wrote)
            if not isinstance(exported, dict) or exported.get("loan_id") != loan_id:
                continue
            heads = {n["notification_id"]: (int(n["chain"]["entries"]), n["chain"]["head"])
                     for n in exported.get("notices", []) if (n.get("chain") or {}).get("head")}
            found.append({"where": f"s3://{bucket}/{version['Key']}?versionId={version['VersionId']}",
                          "heads": heads})
    return found
