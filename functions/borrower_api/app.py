"""Borrower-facing HTTP API (behind the JWT authorizer): the message center, its read confirmation, preferences,
contact changes and missing-notice reports; without a login, the links in emails (email confirmation, one-click
unsubscribe). Abuse limits, countries served and the edge checks: README, Security."""

import gc

gc.disable()  # the cold start: loading modules makes no garbage, yet collections ran all through it (see the end)

import json
import os
from typing import Annotated, Literal

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Body, Form, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from loan_notify.alerts import SnsAlerts
from loan_notify.borrowers import Borrowers
from loan_notify.center import NotFound, get_notice, list_notices, mark_read, view
from loan_notify.contacts import (
    VerificationError,
    confirm_email,
    signing_secret,
    start_email_change,
    start_phone_change,
    verify_phone,
)
from loan_notify.deliveries import Deliveries
from loan_notify.edge import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    body_bytes,
    declares_json,
    json_depth,
    plain_json_content_type,
)
from loan_notify.errors import BorrowerNotFound, BorrowerRecordInvalid, record_fault
from loan_notify.executions import TaskCallbacks
from loan_notify.ledger import Ledger
from loan_notify.limits import LimitExceeded, Limits
from loan_notify.masking import mask_email, mask_phone
from loan_notify.models import NOTIFICATION_ID_PATTERN, ContactChange, Preferences, ReportRequest, VerificationCode
from loan_notify.reach import served_countries
from loan_notify.review import ReviewCases, report_not_notified
from loan_notify.unsubscribe import check as check_unsubscribe
from loan_notify.unsubscribe import unsubscribe

logger = Logger()
tracer = Tracer()
app = APIGatewayHttpResolver(enable_validation=True)


def _load_secret() -> bytes:
    """The key that signs email links and page tokens, and hashes destinations in the limits table. Fails at
    start-up (the function never serves a request) when it is not configured or empty: never an empty key."""
    return signing_secret(boto3.client("secretsmanager"), os.environ.get("VERIFY_SECRET_ARN", ""),
                          "refusing to start without the signing secret")


_secret = _load_secret()
_dynamodb = boto3.resource("dynamodb")
ledger = Ledger(_dynamodb.Table(os.environ["NOTIFICATIONS_TABLE"]))
borrowers = Borrowers(_dynamodb.Table(os.environ["BORROWERS_TABLE"]))
deliveries = Deliveries(_dynamodb.Table(os.environ["DELIVERIES_TABLE"]))
callbacks = TaskCallbacks(boto3.client("stepfunctions"))
cases = ReviewCases(_dynamodb.Table(os.environ["REVIEW_CASES_TABLE"]))
limits = Limits(_dynamodb.Table(os.environ["LIMITS_TABLE"]), pepper=_secret)
_sns = boto3.client("sns")
alerts = SnsAlerts(_sns, os.environ["OPS_ALERTS_TOPIC_ARN"])
_borrowers_table = _dynamodb.Table(os.environ["BORROWERS_TABLE"])
_sesv2 = boto3.client("sesv2")
LINK_BASE = os.environ.get("CONTACT_CONFIRM_LINK_BASE", "")
SENDER = os.environ.get("SENDER_EMAIL", "")
SERVED = served_countries(os.environ.get("SERVED_COUNTRIES"))
ANSWER_WITHIN_S = int(os.environ.get("REVIEW_ANSWER_WITHIN_SECONDS", "14400"))


def _mail(address: str, subject: str, text: str) -> None:
    _sesv2.send_email(FromEmailAddress=SENDER, Destination={"ToAddresses": [address]},
                      Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}}})


NotificationId = Annotated[str, Path(min_length=1, max_length=200, pattern=NOTIFICATION_ID_PATTERN)]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class Unauthenticated(Exception):
    """The verified token names no borrower (no `sub`, or an empty one)."""


def _documented(*codes: int, ok: int = 200, model: type[BaseModel] | None = None, also_ok: int | None = None
                ) -> dict:
    """Declare the answers a route can give: its success, and its errors in the one JSON shape errors have."""
    meaning = {400: "Bad request", 401: "No valid bearer token, or one that names no borrower",
               404: "Not found (including another borrower's resource)",
               422: "Invalid input: the fields are named",
               429: "Too many requests: a limit or a lock; Retry-After says when to try again"}
    names = {200: "OK", 201: "Created", 202: "Accepted"}
    answers: dict = {}
    for status in (ok, also_ok):
        if status is not None:
            answers[status] = {"description": names[status]}
            if model is not None:
                answers[status]["content"] = {"application/json": {"model": model}}
    return answers | {code: {"description": meaning[code],
                             "content": {"application/json": {"model": ErrorResponse}}} for code in codes}


def _me():
    """The caller, from the JWT the authorizer verified: its subject is the borrower id."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthenticated()
    return borrowers.get(subject)


def _error(status: int, code: str, message: str, fields: list[dict] | None = None,
           headers: dict[str, str] | None = None) -> Response:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, fields=fields or []))
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump(),
                    headers=headers)


@app.exception_handler(RequestValidationError)
def _invalid(err: RequestValidationError) -> Response:
    fields = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg") or e.get("type"))}
              for e in err.errors()]
    return _error(422, "invalid_request", "The request does not match the API: see fields", fields)


@app.exception_handler(Unauthenticated)
def _unauthenticated(_: Exception) -> Response:
    return _error(401, "unauthorized", "The token names no borrower")


@app.exception_handler(NotFound)
@app.exception_handler(BorrowerNotFound)
def _not_found(_: Exception) -> Response:
    return _error(404, "not_found", "No such notification")


@app.exception_handler(VerificationError)
def _verification(err: VerificationError) -> Response:
    return _error(429 if err.code == "locked" else 400, err.code, str(err))


@app.exception_handler(LimitExceeded)
def _limited(err: LimitExceeded) -> Response:
    logger.warning("limit reached", extra={"limits": [limit.name for limit in err.limits],
                                           "retry_after_s": err.retry_after_s})
    return _error(429, "rate_limited", str(err), headers={"Retry-After": str(err.retry_after_s)})


@app.exception_handler(BorrowerRecordInvalid)
@app.exception_handler(ValidationError)
def _stored_record_invalid(err: ValidationError | BorrowerRecordInvalid) -> Response:
    """Requests are validated by the resolver (RequestValidationError, 422): a pydantic error that gets here comes
    from a stored record that does not fit its model (the platform wrote a borrower's phone as a number, say). That
    is a fault on our side, answered 500 so the 5xx alarm sees it, and never echoed: pydantic's message quotes the
    values, personal data included. The log names the fields and the kind of error only."""
    logger.error("stored record does not fit its model", extra={"errors": record_fault(err)})
    return _error(500, "internal_error", "Something went wrong on our side; it is logged and will be looked at")


@app.exception_handler(ValueError)
def _bad_request(err: ValueError) -> Response:
    field, _, detail = str(err).partition(": ")  # domain errors read "<field>: <what is wrong>"
    fields = [{"field": field, "message": detail}] if detail and " " not in field else []
    return _error(400, "bad_request", str(err), fields)


@app.get("/me/notifications", responses=_documented(400, 401, 404, 422))
def list_my_notifications(limit: Annotated[int, Query(ge=1, le=100)] = 20,
                          page: Annotated[str | None, Query(max_length=1000)] = None) -> dict:
    return list_notices(_me(), ledger=ledger, secret=_secret, limit=limit, page_token=page)


@app.get("/me/notifications/<notification_id>", responses=_documented(401, 404, 422))
def get_my_notification(notification_id: NotificationId) -> dict:
    me = _me()
    return view(get_notice(me, notification_id, ledger=ledger), me)


@app.post("/me/notifications/<notification_id>/read", responses=_documented(401, 404, 422))
def read_my_notification(notification_id: NotificationId) -> dict:
    return mark_read(_me(), notification_id, ledger=ledger, deliveries=deliveries, callbacks=callbacks,
                     contacts=borrowers)


@app.get("/me/preferences", responses=_documented(401, 404, model=Preferences))
def get_my_preferences() -> Preferences:
    me = _me()
    return Preferences(channels=me.preferred_channels, language=me.locale, quiet_hours=me.quiet_hours,
                       opt_out_non_critical=me.opt_out_non_critical)


@app.put("/me/preferences", responses=_documented(401, 404, 422, model=Preferences))
def put_my_preferences(preferences: Annotated[Preferences, Body()]) -> Preferences:
    borrowers.set_preferences(_me().borrower_id, preferences)
    return preferences


@app.get("/me/contact", responses=_documented(401, 404))
def get_my_contact() -> dict:
    me = _me()
    return {"phone": mask_phone(me.phone), "phone_verified": me.phone_health.verified,
            "email": mask_email(me.email), "email_verified": me.email_health.verified}


@app.put("/me/contact", responses=_documented(400, 401, 404, 422, 429, ok=202))
def change_my_contact(change: Annotated[ContactChange, Body()]) -> Response[dict]:
    """A new phone number is texted a code, a new email address gets a confirmation link; each is used only once
    verified. Only numbers in the countries served, of a kind a text may go to, are accepted; codes and links are
    limited per borrower, per destination and in distinct destinations (429 with Retry-After)."""
    me = _me()
    if change.phone is not None:
        started = start_phone_change(me.borrower_id, change.phone, table=_borrowers_table, sms=_sns, limits=limits,
                                     served=SERVED)
    elif change.email is not None:
        started = start_email_change(me.borrower_id, change.email, table=_borrowers_table, mailer=_mail,
                                     secret=_secret, link_base=LINK_BASE, limits=limits)
    else:
        raise ValueError("phone or email: one of them is required")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=started)


@app.post("/me/contact/verify", responses=_documented(400, 401, 404, 422, 429))
def verify_my_contact(code: Annotated[VerificationCode, Body()]) -> dict:
    return verify_phone(_me().borrower_id, code.code, table=_borrowers_table, limits=limits)


@app.get("/contact/confirm", responses=_documented(400, 422))
def confirm_my_email(token: Annotated[str, Query(min_length=10, max_length=2000)]) -> dict:
    """The link from the confirmation email (no login: the signed, expiring token is the proof)."""
    return confirm_email(token, table=_borrowers_table, secret=_secret)


UnsubscribeToken = Annotated[str, Query(min_length=10, max_length=2000, description="The signed token of the link")]


class Unsubscribed(BaseModel):
    opt_out_non_critical: bool
    notice: str


_UNSUBSCRIBE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe from loan updates</title>
<meta name="robots" content="noindex"></head>
<body><p>Stop receiving non-critical loan updates by email? Notices you must receive, such as an overdue payment,
still reach you.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form></body></html>
"""


@app.get("/unsubscribe", responses=_documented(400, 422) | {200: {
    "description": "A page that asks to confirm (a form that POSTs the one-click body); nothing changes",
    "content": {"text/html": {"schema": {"type": "string"}}}}})
def unsubscribe_page(t: UnsubscribeToken) -> Response[str]:
    """The List-Unsubscribe link opened by a person or fetched by a link scanner: checks the link, changes nothing."""
    claims = check_unsubscribe(t, secret=_secret, borrowers=borrowers)
    logger.info("unsubscribe page", extra={"notification_id": claims.notification_id})
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=_UNSUBSCRIBE_PAGE,
                    headers={"Content-Security-Policy": "default-src 'none'; form-action 'self'",
                             "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


@app.post("/unsubscribe", responses=_documented(400, 422, model=Unsubscribed))
def unsubscribe_one_click(t: UnsubscribeToken,
                          one_click: Annotated[Literal["One-Click"], Form(alias="List-Unsubscribe")]) -> Unsubscribed:
    """RFC 8058 one-click unsubscribe (no login: the signed, expiring token is the proof): the borrower stops
    receiving non-critical notices, as with `opt_out_non_critical` in PUT /me/preferences. A repeat is harmless."""
    claims = unsubscribe(t, secret=_secret, borrowers=borrowers)
    logger.info("unsubscribed by one click", extra={"notification_id": claims.notification_id})
    return Unsubscribed(opt_out_non_critical=True, notice=claims.notification_id)


@app.post("/me/reports", responses=_documented(400, 401, 404, 422, 429, ok=201, also_ok=200))
def report_missing_notice(report: Annotated[ReportRequest, Body()]) -> Response[dict]:
    """ "I was never notified about loan X": a person will look into it; the answer says what happens next.
    While the case is open a repeat answers it (200); an unknown loan answers like another borrower's."""
    opened, created = report_not_notified(_me().borrower_id, report.loan_id, ledger=ledger, cases=cases,
                                          alerts=alerts, limits=limits, answer_within_s=ANSWER_WITHIN_S)
    return Response(status_code=201 if created else 200, content_type=content_types.APPLICATION_JSON, body=opened)


def openapi_document() -> dict:
    """The OpenAPI document of these routes (make openapi writes it to docs/openapi.json)."""
    return json.loads(app.get_openapi_json_schema(
        title="loan-notify borrower API", version="1.0.0",
        description="The borrower's message center, read confirmations, preferences and missing-notice reports. "
                    "Every route needs a bearer JWT from the platform's identity provider; its subject is the "
                    "borrower id. The links in emails (/contact/confirm, /unsubscribe) need none: their signed, "
                    "expiring token is the proof.",
        security_schemes={"borrowerJwt": HTTPBearer(bearerFormat="JWT")}, security=[{"borrowerJwt": []}]))


def _refused(code: str, message: str, *, status: int = 400, field: str = "body") -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"error": {"code": code, "message": message,
                                          "fields": [{"field": field, "message": message}]}})}


FORM_PATHS = frozenset({"/unsubscribe"})  # RFC 8058: the one-click POST is a form


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)  # responses carry names, amounts and reasons
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    raw = body_bytes(event.get("body"), bool(event.get("isBase64Encoded")))
    if len(raw) > MAX_BODY_BYTES:
        return _refused("too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
    if json_depth(raw) > MAX_JSON_DEPTH:
        return _refused("too_deep", f"JSON may nest at most {MAX_JSON_DEPTH} levels")
    if not declares_json(event, form_paths=FORM_PATHS):
        return _refused("unsupported_media_type", "request bodies are JSON: send Content-Type: application/json",
                        status=415, field="content-type")
    return app.resolve(plain_json_content_type(event), context)

# What the cold start loaded lives as long as this instance: later collections skip it, and collecting resumes.
gc.freeze()
gc.enable()
