"""The borrower API on 127.0.0.1: the template's HttpApi routes, its JWT authorizer, the real handler in process.

Requests become API Gateway HTTP API (payload 2.0) events. The authorizer is enforced as API Gateway does it: a
missing or invalid bearer token is a 401 before the function runs; issuer and audience are the stack's JwtIssuer and
JwtAudience parameters. Tokens are signed with a key made at start (RS256) and issued by `LocalApi.issue_token`,
or over HTTP by the local-only route `POST /_local/token {"sub": "<borrower_id>"}`. `GET /_local/outbox[?to=...]`
lists what the simulated providers sent (read by `loan-notify-ops local outbox`).
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
    def __init__(self, method: str, path: str, function: str, authorized: bool = True) -> None:
        self.authorized = authorized  # False: the route says Auth: {Authorizer: NONE}
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


def routes_from_template(sam: dict[str, Any], api_logical_id: str) -> list[Route]:
    routes = []
    for logical_id, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            props = event.get("Properties", {})
            if event.get("Type") == "HttpApi" and props.get("ApiId") == {"Ref": api_logical_id}:
                open_route = (props.get("Auth") or {}).get("Authorizer") == "NONE"
                routes.append(Route(props["Method"], props["Path"], logical_id, authorized=not open_route))
    return routes


class LocalApi:
    def __init__(self, cloud: Any, routes: list[Route], issuer: str, audience: str, port: int) -> None:
        self.cloud = cloud
        self.routes = routes
        self.issuer = issuer
        self.audience = audience
        self._key = RSAKey.generate_key(2048)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
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

    def issue_token(self, subject: str, ttl_s: int = 3600, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": subject, "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + ttl_s, **claims}
        return jwt.encode({"alg": "RS256", "kid": "local"}, payload, self._key)

    def verify(self, header: str | None) -> dict[str, Any] | None:
        if not header or not header.lower().startswith("bearer "):
            return None
        try:
            claims = jwt.decode(header.split(" ", 1)[1].strip(), self._key).claims
        except (JoseError, ValueError):
            return None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if claims.get("iss") != self.issuer or self.audience not in audiences:
            return None
        if int(claims.get("exp", 0)) < time.time():
            return None
        return claims

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
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "POST" and parts.path == "/_local/token":
                    subject = json.loads(body or b"{}").get("sub", "")
                    self._reply(200, json.dumps({"token": api.issue_token(subject)}).encode())
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
                claims = api.verify(self.headers.get("authorization")) if route.authorized else {}
                if claims is None:
                    self._reply(401, b'{"message":"Unauthorized"}')
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
