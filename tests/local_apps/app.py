"""A plain ASGI app for the `scf-asgi local` tests: no framework, so a cold start is quick."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable
from typing import Any, Callable
from urllib.parse import parse_qs

# Output of initialisation: SCF puts it in the log of the instance's first invocation.
print("APP MODULE LOADED", flush=True)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>scf-asgi local</title></head>
<body>
<p id="out">waiting</p>
<script>
fetch("/release/api/hello?who=chromium")
  .then(function (r) { return r.json(); })
  .then(function (data) { document.getElementById("out").textContent = data.message; })
  .catch(function (e) { document.getElementById("out").textContent = "failed: " + e; });
</script>
</body></html>
"""


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def json_response(send: Send, data: Any, status: int = 200) -> None:
    body = json.dumps(data).encode("utf-8")
    await respond(send, status, body, [(b"content-type", b"application/json")])


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode("ascii"), keep_blank_values=True)
    event = scope.get("scf.event", {})
    context = scope.get("scf.context")

    if path == "/json":
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        await json_response(
            send,
            {
                "path": path,
                "root_path": scope["root_path"],
                "scheme": scope["scheme"],
                "server": list(scope["server"]),
                "client": list(scope["client"]) if scope["client"] else None,
                "query": query,
                "headers": headers,
                "event": event,
                "request_id": context.request_id if context else None,
                "time_limit_in_ms": context.time_limit_in_ms if context else None,
                "memory_limit_in_mb": context.memory_limit_in_mb if context else None,
                "env": {
                    name: os.environ.get(name)
                    for name in (
                        "SCF_FUNCTIONNAME",
                        "SCF_FUNCTIONVERSION",
                        "SCF_NAMESPACE",
                        "TENCENTCLOUD_REGION",
                        "TENCENTCLOUD_RUNENV",
                        "USER_CODE_ROOT",
                        "_HANDLER",
                        "SCF_RUNTIME_API",
                    )
                },
                "pid": os.getpid(),
            },
        )
    elif path == "/echo":
        content_type = dict(scope["headers"]).get(b"content-type", b"application/octet-stream")
        base64_flag = str(event.get("isBase64Encoded")).encode("ascii")
        await respond(
            send,
            200,
            body,
            [(b"content-type", content_type), (b"x-event-base64", base64_flag)],
        )
    elif path == "/cookies":
        await respond(
            send,
            200,
            b"two cookies",
            [
                (b"content-type", b"text/plain"),
                (b"set-cookie", b"a=1; Path=/; HttpOnly"),
                (b"set-cookie", b"b=2, with a comma; Path=/"),
            ],
        )
    elif path == "/redirect":
        await respond(send, 302, b"", [(b"location", b"/release/json?from=redirect")])
    elif path == "/sleep":
        began = time.time()
        await asyncio.sleep(float(query.get("s", ["5"])[0]))
        slept = query.get("s", ["5"])[0]
        ended = time.time()
        await json_response(send, {"slept": slept, "pid": os.getpid(), "span": [began, ended]})
    elif path == "/boom":
        raise RuntimeError("secret detail that must not leak")
    elif path == "/exit":
        os._exit(3)
    elif path == "/big":
        await respond(send, 200, b"x" * (7 * 1024 * 1024), [(b"content-type", b"text/plain")])
    elif path == "/page":
        await respond(send, 200, PAGE, [(b"content-type", b"text/html; charset=utf-8")])
    elif path == "/status":
        # A body whatever the status (an app may send one with a 204): what it says it sent.
        code = int(query["code"][0])
        await respond(send, code, b"{}", [(b"x-sent", b"{}")])
    elif path == "/api/hello":
        who = query.get("who", ["world"])[0]
        await json_response(send, {"message": f"hello {who} from scf-asgi local"})
    elif path == "/print":
        print("PRINTED BY THE APP", flush=True)
        print("AN ERROR LINE FROM THE APP", file=sys.stderr, flush=True)
        await json_response(send, {"printed": True})
    elif path == "/environ":
        platform = {
            name: value
            for name, value in os.environ.items()
            if name.startswith(("SCF_", "TENCENTCLOUD_")) and not name.startswith("SCF_ASGI_")
        }
        platform["GREETING"] = os.environ.get("GREETING", "")
        await json_response(send, platform)
    elif path == "/write":
        # Writes where the code lives fail on SCF (read-only); /tmp is the scratch space.
        target = query["path"][0]
        try:
            with open(target, "w") as file:
                file.write("x")
        except OSError as exc:
            await json_response(send, {"written": False, "errno": exc.errno, "error": str(exc)})
        else:
            os.remove(target)
            await json_response(send, {"written": True})
    else:
        await json_response(send, {"error": "not found", "path": path}, status=404)
