"""DynamoDB, SQS, Step Functions, Lambda Invoke and SNS Publish calls handed to moto's handler directly, without the
HTTP round trip in between (patch 26; the others since patch 37), and End User Messaging SMS calls to the local
cloud's own model of that service (`localcloud.smsvoice.respond`) before they are signed.

In process, a botocore call reaches moto through everything a real request goes through: botocore signs it and
builds its user agent, moto matches its URL against every service's patterns, rebuilds it as a werkzeug request,
parses its JSON body again against the service model, and botocore parses the answer. For DynamoDB (most of a
notice's calls) that was over half of each call's time in the local cloud, and none of it is the work; for the other
calls a notice makes (the outbox queue, StartExecution, task callbacks, a task's Invoke, a receipt's Publish) it was
about half as well.

`answer` is a botocore `before-call` handler: for a request to one of `SERVICES` (already validated and serialized by
botocore) it runs moto's own response class (`DynamoHandler`, `SQSResponse`, `StepFunctionResponse`, `LambdaResponse`,
`SNSResponse`) on the request's body, set up as moto's `BaseResponse.setup_class` would set it up, and hands botocore
the answer, parsed by botocore's own parser for the protocol (a DynamoDB answer without a binary value has its
attribute values taken as they came: `_ValuesAsSent`).

What moto would have done differently is not reachable from these requests:
- DynamoDB: the body is the JSON botocore wrote; moto's parser would return the same values except for binary
  attributes (base64 text, decoded by moto's parser): a request carrying one takes the usual path;
- SQS and SNS: their parameters are parsed by moto's own parser (`parse_parameters`), from the same body (SNS's
  form url-encoded as botocore encodes it);
- Lambda (Invoke only): the function and qualifier are read from the same path, query string and payload, the
  operation is the one botocore called (moto's router would match it from the path);
- Step Functions: moto reads each parameter from the query string it derives from the body (as setup_class does:
  the body's text split as a form) and then from the JSON body; the lane derives the same query string;
- the account is the one moto derives from the client's access key, the region the client's (for these services
  and AWS endpoints, the one moto reads from the URL or the signature's scope); the access key is marked as
  visited as moto marks it;
- no IAM check: moto only makes one when INITIAL_NO_AUTH_ACTION_COUNT is set (the local cloud never sets it);
- errors come back as moto writes them and botocore raises them as usual; an answer botocore's retry handler would
  retry (a Step Functions throttle from the provider simulator) is retried here through the same `needs-retry`
  handler, with the same sleeps, as botocore's endpoint does. What the endpoint's loop also does and the lane does
  not: the events around sending (`before-send`, `response-received`), which carry the adaptive retry mode's rate
  limiter (the local cloud's clients use the standard mode) and nothing else here;
Only with moto's in-process mock on (`mock_aws`), and only for AWS endpoints: in server mode requests go over HTTP.
A request moto's configuration would pass through to AWS or refuse (a service off its whitelist), or one its request
recorder would record, takes the usual path, which does that.
tests/unit/test_fastlane.py runs the same requests with and without it and compares the answers.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlparse

from botocore import parsers
from botocore.awsrequest import AWSResponse
from botocore.endpoint import convert_to_response_dict
from botocore.hooks import first_non_none_response
from moto.core.botocore_stubber import MockRawResponse
from moto.core.utils import utcnow
from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date

from localcloud import smsvoice
from localcloud.smsvoice import Raw

SERVICES = frozenset({"dynamodb", "sqs", "stepfunctions", "lambda", "sns"})
# Services moto does not model, answered from the local cloud's own model (End User Messaging SMS)
LOCAL_MODELS = frozenset({smsvoice.SERVICE_NAME})
# Of these services, only these operations (a Step Functions task's Invoke, a receipt's Publish); the others take
# moto's usual path.
OPERATIONS = {"lambda": frozenset({"Invoke"}), "sns": frozenset({"Publish"})}
# Requests with a binary value take moto's usual path: DynamoDB's lane reads the JSON as it is, where moto's parser
# would decode the base64 text; SQS's are left to it too, the lane's checks being written for text attributes.
_BINARY = {"dynamodb": ('"B":', '"BS":'), "sqs": ('"BinaryValue"', '"BinaryListValues"')}

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


class _Request:
    """What moto's `parse_parameters` reads of a request: its body, and a query-protocol request's form."""

    method = "POST"
    path = "/"

    def __init__(self, body: bytes, headers: _Headers, values: dict[str, Any] | None = None) -> None:
        self.data = body
        self.headers = headers
        self.values: dict[str, Any] = values or {}  # a query-protocol request's form
        self.content_type = headers.get("content-type", "")


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


def request_body(params: dict[str, Any]) -> bytes | None:
    """The bytes botocore will send for a request dict at `before-call`: a query-protocol form (still a dict there)
    url-encoded as botocore's request preparation encodes it, text as UTF-8. None for a file-like body."""
    body = params.get("body") or b""
    if isinstance(body, dict):
        body = urlencode([(key.encode("utf-8") if isinstance(key, str) else key,
                           value.encode("utf-8") if isinstance(value, str) else value) for key, value in body.items()],
                         doseq=True)
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    return None


# moto's name for a service (its backend index and configuration), where it differs from botocore's
_MOTO_NAMES = {"lambda": "awslambda"}
# The response class moto answers each service with
_HANDLERS = {"dynamodb": ("moto.dynamodb.responses", "DynamoHandler"), "sqs": ("moto.sqs.responses", "SQSResponse"),
             "lambda": ("moto.awslambda.responses", "LambdaResponse"), "sns": ("moto.sns.responses", "SNSResponse"),
             "stepfunctions": ("moto.stepfunctions.responses", "StepFunctionResponse")}


def moto_serves(moto_service: str, clean_url: str) -> bool:
    """Whether moto's configuration lets its stubber answer a request itself, as it checks on every request: not
    passed through to AWS (by URL or by service) and the service whitelisted. `moto_service` is moto's name for it."""
    from moto.core.config import passthrough_service, passthrough_url, service_whitelisted

    return not (passthrough_url(clean_url) or passthrough_service(moto_service)
                or not service_whitelisted(moto_service))


def _moto_answers(service: str, url: str) -> bool:
    """Whether moto's stubber would answer this request itself (`moto_serves`) and its request recorder is off (it
    records what the stubber sees)."""
    from moto.moto_api import recorder

    parsed = urlparse(url)
    return moto_serves(_MOTO_NAMES.get(service, service), f"{parsed.scheme}://{parsed.netloc}{parsed.path}") \
        and not recorder._user_enabled


def _handler(service: str) -> Any:
    module, name = _HANDLERS[service]
    return getattr(importlib.import_module(module), name)()


def _querystring(url: str, text: str) -> dict[str, Any] | None:
    """The query string moto's `setup_class` derives for a request with no form: the URL's, else the body's text
    read as a form. None where it would fall back to the headers (an empty body; botocore never sends one here)."""
    from moto.core.responses import _decode_dict

    querystring: dict[str, Any] = OrderedDict()
    querystring.update(parse_qs(urlparse(url).query, keep_blank_values=True))
    if not querystring and text:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError, AttributeError):
            querystring.update(OrderedDict((key, [value]) for key, value in parse_qsl(text, keep_blank_values=True)))
    if not querystring:
        return None
    try:
        return _decode_dict(querystring)
    except UnicodeDecodeError:
        return querystring


def answer(model: Any, params: dict[str, Any], request_signer: Any, **_kwargs: Any) -> tuple[Any, Any] | None:
    """The before-call handler: (http response, parsed answer) for a request the lane answers, None for anything
    else. An answer botocore's retry handler would retry (a throttle) is retried here the same way: the same
    handler decides, and the lane sleeps what it says, as botocore's endpoint does between tries."""
    answered = attempt(model, params, request_signer)
    if answered is None:
        return None
    context = params.get("context", {})
    retries = context.setdefault("retries", {})
    retries.setdefault("invocation-id", str(uuid.uuid4()))
    tries = retries["attempt"] = 1
    event = f"needs-retry.{model.service_model.service_id.hyphenize()}.{model.name}"
    # botocore's standard retry handler retries a 2xx answer only when DynamoDB's CRC32 header does not match the
    # body, and moto writes that header from the very body handed over here: only an error answer is asked about
    while answered[0].status_code >= 300:
        delay = first_non_none_response(request_signer._event_emitter.emit(
            event, response=answered, endpoint=None, operation=model, attempts=tries, caught_exception=None,
            request_dict=params))
        if delay is None or delay is False:
            break
        time.sleep(delay)
        tries = retries["attempt"] = tries + 1
        answered = attempt(model, params, request_signer)
        if answered is None:  # moto's configuration changed between tries: its usual path makes the next try
            return None
    if "ResponseMetadata" in answered[1]:
        answered[1]["ResponseMetadata"]["RetryAttempts"] = tries - 1
    return answered


def attempt(model: Any, params: dict[str, Any], request_signer: Any) -> tuple[Any, Any] | None:
    """One try of a request, answered by moto's handler for its service: (http response, parsed answer), or None
    for a request the lane leaves to moto's usual path."""
    service = model.service_model
    name = service.service_name
    if name in LOCAL_MODELS:
        return _sms_voice(model, params, request_signer)
    if name not in SERVICES or model.name not in OPERATIONS.get(name, (model.name,)) \
            or not mocked(params.get("url", "")) or not _moto_answers(name, params["url"]):
        return None
    raw = request_body(params)
    if raw is None:  # a file-like body (a Lambda payload can be one): moto's usual path reads it
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:  # not text (a Lambda payload can be anything): moto's usual path
        return None
    if any(marker in text for marker in _BINARY.get(name, ())):
        return None
    from moto.iam.models import mark_account_as_visited
    from moto.utilities.utils import get_partition

    querystring: dict[str, Any] | None = {}
    if name != "dynamodb":
        querystring = _querystring(params["url"], text)
        if querystring is None:
            return None
    credentials = request_signer._credentials
    handler = _handler(name)
    headers = _Headers({key.lower(): value.decode() if isinstance(value, bytes) else value
                        for key, value in params.get("headers", {}).items()})
    handler.body = text
    handler.raw_body = text if name == "dynamodb" else raw
    handler.headers = headers
    handler.querystring = handler.data = querystring
    handler.form_data = {}
    handler.parsed_url = urlparse(params["url"])
    path = handler.parsed_url.path or "/"
    handler.method, handler.uri, handler.path, handler.raw_path = "POST", params["url"], path, path
    handler.normalized_request = None
    handler.uri_match = {}
    if name == "lambda":  # rest-json: the operation and the function come from the path moto's router matches
        if "Action" in querystring:  # moto would take the operation from it: its usual path answers that
            return None
        handler._get_action = lambda: model.name
        handler.uri_match = {"FunctionName": unquote(path.rsplit("/", 2)[-2])}
    elif name == "sns":  # query protocol: the form is the request's values
        handler.form_data = {key: values[0] for key, values in querystring.items()}
    handler.region = request_signer._region_name
    handler.partition = get_partition(handler.region)
    handler.response_headers = {"server": "amazon.com", "date": http_date(utcnow())}
    handler.is_werkzeug_request = False
    handler.access_key = credentials.access_key if credentials is not None else "AKIAEXAMPLE"
    handler.current_account = _account(handler.access_key, headers)
    if name == "dynamodb":
        handler.params = json.loads(text or "{}")
    elif handler.automated_parameter_parsing:
        handler.parse_parameters(_Request(raw, headers, handler.form_data))
    mark_account_as_visited(account_id=handler.current_account, access_key=handler.access_key,
                            service=handler.service_name, region=handler.region)
    try:
        status, response_headers, response_body = handler.call_action()
    except HTTPException as err:  # as moto's botocore stubber answers one raised outside the action
        status, response_headers, response_body = err.code, dict(err.get_headers()), err.get_body()
    out = response_body.encode("utf-8") if isinstance(response_body, str) else response_body
    # a streamed answer (Invoke's payload) is read from the raw body, as from moto's stubber
    raw_body = MockRawResponse(out) if model.has_streaming_output else Raw(out)
    http = AWSResponse(params["url"], int(status), {k: str(v) for k, v in response_headers.items()}, raw_body)
    as_sent = False
    if name == "dynamodb":
        text_out = response_body if isinstance(response_body, str) else out.decode("utf-8", "replace")
        as_sent = not any(m in text_out for m in _BINARY["dynamodb"])
    return http, _parse(http, model, request_signer, as_sent=as_sent)


def _sms_voice(model: Any, params: dict[str, Any], request_signer: Any) -> tuple[Any, Any] | None:
    """End User Messaging SMS, which moto does not model: answered by the local cloud's model
    (`localcloud.smsvoice.respond`, what its before-send handler answers with) without signing the request first,
    for a client whose before-send handler for the operation would be that one (a client given another keeps it).
    The region is the client's: the one the signature's scope would name."""
    emitter = request_signer._event_emitter
    handlers = getattr(emitter, "_emitter", emitter)._handlers.prefix_search(f"{smsvoice.EVENT_NAME}.{model.name}")
    if not handlers or handlers[0] is not smsvoice.answer:
        return None
    raw = request_body(params)
    if raw is None:
        return None
    http = smsvoice.respond(smsvoice.backend, params["url"], request_signer._region_name, model.name, raw)
    return http, _parse(http, model, request_signer)


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
