"""A hand-written Custom Runtime for `scf-asgi local --bootstrap`: it talks to the runtime API
directly, so it can post answers `scf-asgi run` never would (malformed results, errors, two
posts) and report what the emulated API did."""

from __future__ import annotations

import base64
import http.client
import json
import os


def main() -> None:
    connection = http.client.HTTPConnection(
        os.environ["SCF_RUNTIME_API"], int(os.environ["SCF_RUNTIME_API_PORT"])
    )

    def call(
        method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection.request(method, path, body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    call("POST", "/runtime/init/ready", b" ")
    while True:
        _, headers, raw = call("GET", "/runtime/invocation/next")
        event = json.loads(raw)
        path = event["path"]
        if path == "/not-json":
            call("POST", "/runtime/invocation/response", b"hello")
        elif path == "/array":
            call("POST", "/runtime/invocation/response", b"[1, 2]")
        elif path == "/string-status":
            call("POST", "/runtime/invocation/response", b'{"statusCode": "200", "body": "x"}')
        elif path == "/bad-header":
            answer = {"statusCode": 200, "headers": {"X-Count": 1}, "body": "x"}
            call("POST", "/runtime/invocation/response", json.dumps(answer).encode())
        elif path == "/error":
            call("POST", "/runtime/invocation/error", b'{"errorMessage": "it broke"}')
        elif path == "/first-wins":
            first = {"statusCode": 201, "headers": {"Set-Cookie": ["a=1", "b=2"]}, "body": "one"}
            call("POST", "/runtime/invocation/response", json.dumps(first).encode())
            call("POST", "/runtime/invocation/response", b'{"statusCode": 500, "body": "two"}')
        else:  # "/probe": report on the runtime API and the environment
            again_status, again_headers, again_raw = call("GET", "/runtime/invocation/next")
            unknown_status, _, _ = call("GET", "/runtime/unknown")
            method_status, _, _ = call("GET", "/runtime/invocation/response")
            report = {
                "headers": {k.lower(): v for k, v in headers.items()},
                "again_status": again_status,
                "again_same_event": again_raw == raw,
                "again_request_id": again_headers.get("request_id"),
                "unknown_status": unknown_status,
                "wrong_method_status": method_status,
                "cwd": os.getcwd(),
                "env": {
                    k: v
                    for k, v in os.environ.items()
                    if k.startswith(("SCF_", "TENCENTCLOUD_", "_HANDLER", "USER_CODE_ROOT"))
                },
            }
            answer = {
                "isBase64Encoded": True,
                "statusCode": 200,
                "headers": {"Content-Type": "application/json"},
                "body": base64.b64encode(json.dumps(report).encode()).decode(),
            }
            call("POST", "/runtime/invocation/response", json.dumps(answer).encode())


if __name__ == "__main__":
    main()
