"""DynamoDB calls handed to moto's handler directly, without the HTTP round trip in between (patch 26).

In process, a botocore call reaches moto through everything a real request goes through: botocore signs it and
builds its user agent, moto matches its URL against every service's patterns, rebuilds it as a werkzeug request,
parses its JSON body again against the service model, and botocore parses the answer. For DynamoDB (most of a
notice's calls) that was over half of each call's time in the local cloud, and none of it is the work.

`answer` is a botocore `before-call` handler: for a DynamoDB request (already validated and serialized by botocore)
it runs moto's own `DynamoHandler` on the request's JSON body and hands botocore the answer, parsed by botocore's own
parser for the protocol (an answer without a binary value has its attribute values taken as they came:
`_ValuesAsSent`). What moto would have done differently is not reachable from DynamoDB's JSON requests:
- the body is the JSON botocore wrote; moto's parser would return the same values except for binary attributes
  (base64 text, decoded by moto's parser): a request carrying one takes the usual path;
- the account is the one moto derives from the client's access key, the region the client's;
- no IAM check: moto only makes one when INITIAL_NO_AUTH_ACTION_COUNT is set (the local cloud never sets it);
- errors come back as moto writes them and botocore raises them as usual; DynamoDB's retryable errors (throttling,
  provisioned throughput) are never raised by moto here, so botocore's retry would not have run either.
Only with moto's in-process mock on (`mock_aws`), and only for AWS endpoints: in server mode requests go over HTTP.
tests/unit/test_fastlane.py runs the same requests with and without it and compares the answers.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from botocore import parsers
from botocore.awsrequest import AWSResponse
from botocore.endpoint import convert_to_response_dict
from werkzeug.exceptions import HTTPException

from localcloud.smsvoice import Raw

SERVICES = frozenset({"dynamodb"})
_BINARY = ('"B":', '"BS":')

_parsers: dict[str, Any] = {}
_accounts: dict[str, str] = {}
_lock = threading.Lock()


class _Headers(dict):
    """Request headers looked up as moto's (case-insensitive) headers are."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(str(key).lower())

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())




def _account(access_key: str, headers: _Headers) -> str:
    """The account moto's `BaseResponse.get_current_account` would pick."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if "x-moto-account-id" in headers:
        return headers["x-moto-account-id"]
    account = _accounts.get(access_key)
    if account is None:
        from moto.iam.models import get_account_id_from

        with _lock:
            account = _accounts[access_key] = get_account_id_from(access_key)
    return account


def mocked(url: str) -> bool:
    """Whether moto's in-process mock answers a request to this URL (an AWS endpoint while the mock is on)."""
    from moto.core.models import botocore_stubber

    return botocore_stubber.enabled and ".amazonaws.com" in url


def answer(model: Any, params: dict[str, Any], request_signer: Any, **_kwargs: Any) -> tuple[Any, Any] | None:
    """The before-call handler: (http response, parsed answer) for a DynamoDB request, None for anything else."""
    service = model.service_model
    if service.service_name not in SERVICES or not mocked(params.get("url", "")):
        return None
    body = params.get("body") or b"{}"
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else str(body)
    if any(marker in text for marker in _BINARY):
        return None
    from moto.dynamodb.responses import DynamoHandler
    from moto.utilities.utils import get_partition

    credentials = request_signer._credentials
    handler = DynamoHandler()
    headers = _Headers({key.lower(): value.decode() if isinstance(value, bytes) else value
                        for key, value in params.get("headers", {}).items()})
    handler.body = handler.raw_body = text
    handler.headers = headers
    handler.querystring, handler.data, handler.form_data = {}, {}, {}
    handler.method, handler.uri, handler.path, handler.raw_path = "POST", params["url"], "/", "/"
    handler.uri_match = {}
    handler.region = request_signer._region_name
    handler.partition = get_partition(handler.region)
    handler.response_headers = {"server": "amazon.com"}
    handler.is_werkzeug_request = False
    handler.params = json.loads(text)
    handler.access_key = credentials.access_key if credentials is not None else "AKIAEXAMPLE"
    handler.current_account = _account(handler.access_key, headers)
    try:
        status, response_headers, response_body = handler.call_action()
    except HTTPException as err:  # as moto's botocore stubber answers one raised outside the action
        status, response_headers, response_body = err.code, dict(err.get_headers()), err.get_body()
    raw = response_body.encode("utf-8") if isinstance(response_body, str) else response_body
    http = AWSResponse(params["url"], int(status), {k: str(v) for k, v in response_headers.items()}, Raw(raw))
    text_out = response_body if isinstance(response_body, str) else raw.decode("utf-8", "replace")
    return http, _parse(http, model, request_signer, as_sent=not any(m in text_out for m in _BINARY))


class _ValuesAsSent(parsers.JSONParser):
    """botocore's JSON parser, except that a DynamoDB attribute value (`{"S": "x"}`, `{"M": {...}}`...) is taken
    as it came instead of being rebuilt member by member. Without a binary member (base64 text, which the parser
    decodes) the rebuilt value is equal to the one that came, and an item is mostly attribute values: a 5 KB
    ledger item is about 250 of them."""

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and isinstance(value, dict):
            return value
        return super()._handle_structure(shape, value)


_as_sent = _ValuesAsSent()


def _parse(http: AWSResponse, model: Any, request_signer: Any, as_sent: bool = False) -> Any:
    """What botocore's endpoint does with an answer (`Endpoint._do_get_response`): before-parse, the protocol's
    parser, and for an error the second pass that adds its modeled fields (a failed condition's old item).
    `as_sent`: the answer has no binary value, so its attribute values need no rebuilding (`_ValuesAsSent`)."""
    service = model.service_model
    response_dict = convert_to_response_dict(http, model)
    customized: dict[str, Any] = {}
    request_signer._event_emitter.emit(f"before-parse.{service.service_id.hyphenize()}.{model.name}",
                                       operation_model=model, response_dict=response_dict,
                                       customized_response_dict=customized)
    protocol = service.resolved_protocol
    parser = _as_sent if as_sent and protocol == "json" else _parsers.get(protocol)
    if parser is None:
        parser = _parsers.setdefault(protocol, parsers.create_parser(protocol))
    parsed = parser.parse(response_dict, model.output_shape)
    parsed.update(customized)
    if http.status_code >= 300:
        code = parsed.get("Error", {}).get("Code")
        shape = service.shape_for_error_code(code) if code else None
        if shape is not None:
            parsed.update(parser.parse(response_dict, shape))
    return parsed
