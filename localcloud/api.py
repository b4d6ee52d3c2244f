"""The borrower API on 127.0.0.1: the template's HttpApi routes, its JWT authorizer, the real handler in process.

Requests become API Gateway HTTP API (payload 2.0) events. The authorizer is enforced as API Gateway does it: a
missing or invalid bearer token is a 401 before the function runs; issuer and audience are the stack's JwtIssuer and
JwtAudience parameters. Tokens are signed with a key made at start (RS256) and issued by `LocalApi.issue_token`,
or over HTTP by the local-only route `POST /_local/token {"sub": "<borrower_id>"}`.

Routes with their own authorizer (the review console's `OpsJwt`: ops issuer and audience, `AuthorizationScopes`)
are checked against it: a token of another issuer or audience is a 401, one without the route's scope a 403. Ops
tokens come from `LocalApi.issue_token_for("OpsJwt", name)` or `POST /_local/ops-token {"sub": "<name>"}`.
`GET /_local/outbox[?to=...]` lists what the simulated providers sent (read by `loan-notify-ops local outbox`).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey


class Route:
    def __init__(self, method: str, path: str, function: str, authorized: bool = True,
                 authorizer: str | None = None, scopes: tuple[str, ...] = ()) -> None:
        self.authorized = authorized  # False: the route says Auth: {Authorizer: NONE}
        self.authorizer = authorizer  # None: the API's default authorizer
        self.scopes = scopes  # AuthorizationScopes: the token needs one of them (else 403)
        self.method = method.upper()
        self.path = path
        self.function = function  # logical id
        pattern = re.sub(r"\{([A-Za-z0-9_]+)\+?\}", r"(?P<\1>[^/]+)", path)
        self._regex = re.compile(f"^{pattern}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        found = self._regex.match(path)
        return found.groupdict() if found else None


def routes_from_template(sam: dict[str, Any], api_logical_id: str,
                         parameters: dict[str, str] | None = None) -> list[Route]:
    routes = []
    for logical_id, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            props = event.get("Properties", {})
            if event.get("Type") == "HttpApi" and props.get("ApiId") == {"Ref": api_logical_id}:
                auth = props.get("Auth") or {}
                open_route = auth.get("Authorizer") == "NONE"
                scopes = tuple(_parameter(s, parameters or {}) for s in auth.get("AuthorizationScopes") or [])
                routes.append(Route(props["Method"], props["Path"], logical_id, authorized=not open_route,
                                    authorizer=None if open_route else auth.get("Authorizer"), scopes=scopes))
    return routes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of clients connecting at once is queued, not reset (the default is 5)


def _numeric_date(value: Any) -> bool:
    """RFC 7519 NumericDate: a JSON number (a boolean is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parameter(value: Any, parameters: dict[str, str]) -> str:
    """A literal, or a `!Ref` to a template parameter (its value)."""
    return parameters[value["Ref"]] if isinstance(value, dict) and "Ref" in value else str(value)


def _local_token(api: Any, path: str, body: bytes) -> tuple[int, bytes]:
    """Local sign-in: a borrower token (`/_local/token`) or an ops one for the review console."""
    try:
        subject = json.loads(body or b"{}").get("sub", "")
    except (ValueError, AttributeError):
        return 400, b'{"message":"Bad Request"}'
    if path == "/_local/token":
        return 200, json.dumps({"token": api.issue_token(str(subject))}).encode()
    subject = str(subject).strip()[:64]
    if "OpsJwt" not in api.authorizers:
        return 404, b'{"message":"Not Found"}'
    if not subject:
        return 400, b'{"message":"sub is required"}'
    return 200, json.dumps({"token": api.issue_token_for("OpsJwt", subject)}).encode()


class Authorizer:
    """A further JWT authorizer of the API (issuer and audience), e.g. the review console's ops authorizer."""

    def __init__(self, issuer: str, audience: str, scopes: tuple[str, ...] = ()) -> None:
        self.issuer = issuer
        self.audience = audience
        self.scopes = scopes  # what tokens issued locally for it carry


class LocalApi:
    def __init__(self, cloud: Any, routes: list[Route], issuer: str, audience: str, port: int) -> None:
        self.cloud = cloud
        self.routes = routes
        self.issuer = issuer
        self.audience = audience
        self._key = RSAKey.generate_key(2048)
        self.authorizers: dict[str, Authorizer] = {}  # the API's authorizers other than the default one
        self._server = _Server(("127.0.0.1", port), self._handler_class())
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue_token(self, subject: str | None, ttl_s: int = 3600, **claims: Any) -> str:
        """A token the stack's authorizer accepts; `subject` None leaves `sub` out, a claim passed as None too."""
        now = int(time.time())
        payload = {"sub": subject, "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + ttl_s, **claims}
        return jwt.encode({"alg": "RS256", "kid": "local"}, {k: v for k, v in payload.items() if v is not None},
                          self._key)

    def verify(self, header: str | None, now: float | None = None, *, issuer: str | None = None,
               audience: str | None = None) -> dict[str, Any] | None:
        """The token's claims, or None (a 401), as API Gateway's JWT authorizer decides: the signature, then
        `iss` and `aud`, then the times: `exp` must be a number after now, `nbf` and `iat`, when present, numbers
        before now. A claim of the wrong type or a token that is not a JWT at all is a 401, never an error."""
        if not header or not header.lower().startswith("bearer "):
            return None
        try:
            claims = jwt.decode(header.split(" ", 1)[1].strip(), self._key).claims
        except (JoseError, ValueError, TypeError):
            return None
        if not isinstance(claims, dict):
            return None
        held = claims.get("aud")
        audiences = held if isinstance(held, list) else [held]
        if claims.get("iss") != (issuer or self.issuer) or (audience or self.audience) not in audiences:
            return None
        now = time.time() if now is None else now
        if not _numeric_date(claims.get("exp")) or claims["exp"] <= now:
            return None
        for name in ("nbf", "iat"):
            if name in claims and (not _numeric_date(claims[name]) or claims[name] > now):
                return None
        return claims

    def add_authorizer(self, name: str, authorizer: Authorizer) -> None:
        self.authorizers[name] = authorizer

    def issue_token_for(self, authorizer: str, subject: str, ttl_s: int = 3600, **claims: Any) -> str:
        """A token for one of the further authorizers (its issuer and audience, and its scopes unless given)."""
        found = self.authorizers[authorizer]
        claims.setdefault("scope", " ".join(found.scopes))
        return self.issue_token(subject, ttl_s, iss=found.issuer, aud=found.audience, **claims)

    def authorize(self, route: Route, header: str | None) -> tuple[int, dict[str, Any] | None]:
        """What API Gateway's JWT authorizer answers for this route: (200, claims), (401, None) for a missing or
        invalid token (wrong issuer or audience included), (403, None) when the route's scopes are not in it."""
        if not route.authorized:
            return 200, {}
        found = self.authorizers.get(route.authorizer or "")
        if found is None:
            claims = self.verify(header)
            return (200, claims) if claims is not None else (401, None)
        claims = self.verify(header, issuer=found.issuer, audience=found.audience)  # the same checks, its issuer
        if claims is None:
            return 401, None
        held = claims.get("scope") or claims.get("scp") or ""
        held = set(held.split() if isinstance(held, str) else held)
        if route.scopes and not held.intersection(route.scopes):
            return 403, None
        return 200, claims

    def outbox(self, to: str | None = None) -> list[dict[str, Any]]:
        """What the simulated providers accepted (SMS, then email, each in the order sent): the codes and links
        a person needs to finish a contact change locally. Local only; in AWS the messages reach real phones."""
        messages = [{"channel": "SMS", "to": m["phone"], "region": m["region"], "message_id": m["message_id"],
                     "subject": None, "text": m["text"]} for m in self.cloud.sms_messages()]
        messages += [{"channel": "EMAIL", "to": ", ".join(m["to"]), "region": m["region"],
                      "message_id": m["message_id"], "subject": m["subject"], "text": m["body"]}
                     for m in self.cloud.emails()]
        return [m for m in messages if to is None or to in m["to"].split(", ")]

    def event(self, route: Route, params: dict[str, str], method: str, raw_path: str, query: str,
              headers: dict[str, str], body: bytes, claims: dict[str, Any]) -> dict[str, Any]:
        query_params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
        text = body.decode("utf-8", errors="replace") if body else None
        now = time.time()
        return {
            "version": "2.0", "routeKey": f"{route.method} {route.path}", "rawPath": raw_path,
            "rawQueryString": query, "headers": headers, "queryStringParameters": query_params or None,
            "pathParameters": params or None, "body": text, "isBase64Encoded": False,
            "requestContext": {
                "accountId": "123456789012", "apiId": "local", "domainName": f"127.0.0.1:{self.port}",
                "domainPrefix": "127", "requestId": str(uuid.uuid4()), "routeKey": f"{route.method} {route.path}",
                "stage": "$default", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                         "userAgent": headers.get("user-agent", "")},
                **({"authorizer": {"jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": None}}}
                   if claims else {}),
            },
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: the handler's own logs say what happened
                return

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {"content-type": "application/json"}).items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self) -> None:
                try:
                    self._route()
                except Exception:  # noqa: BLE001 - as API Gateway: an answer, never a dropped connection
                    self._reply(500, b'{"message":"Internal Server Error"}')

            def _route(self) -> None:
                parts = urlsplit(self.path)
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    self._reply(400, b'{"message":"Bad Request"}')
                    return
                body = self.rfile.read(length) if length > 0 else b""
                if self.command == "POST" and parts.path in ("/_local/token", "/_local/ops-token"):
                    self._reply(*_local_token(api, parts.path, body))
                    return
                if self.command == "GET" and parts.path == "/_local/outbox":
                    to = dict(parse_qsl(parts.query)).get("to")
                    self._reply(200, json.dumps({"messages": api.outbox(to)}, default=str).encode())
                    return
                for route in api.routes:
                    params = route.match(self.command, parts.path)
                    if params is not None:
                        break
                else:
                    self._reply(404, b'{"message":"Not Found"}')
                    return
                status, claims = api.authorize(route, self.headers.get("authorization"))
                if claims is None:
                    self._reply(status, b'{"message":"Forbidden"}' if status == 403 else b'{"message":"Unauthorized"}')
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                event = api.event(route, params, self.command, parts.path, parts.query, headers, body, claims)
                function = api.cloud.runtime.function(route.function).name
                payload, is_error, _ = api.cloud.runtime.invoke(function, event)
                if is_error:
                    self._reply(500, b'{"message":"Internal Server Error"}')
                    return
                response = json.loads(payload)
                data = response.get("body") or ""
                raw = base64.b64decode(data) if response.get("isBase64Encoded") else data.encode()
                out_headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
                out_headers.setdefault("content-type", "application/json")
                self._reply(int(response.get("statusCode", 200)), raw, out_headers)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler
