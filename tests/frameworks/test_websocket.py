"""WebSockets cannot be served: a gateway event is one HTTP request and one answer.

What the user sees must say so. The framework answers a plain HTTP request to a WebSocket-only
route itself (Starlette: 404); an app that answers with WebSocket messages, or a WebSocket event
from the gateway's WebSocket API, should get an error that names WebSockets.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from scf_asgi import Adapter, UnhandledEventError

from .harness import http_event

UPGRADE_HEADERS = {"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-version": "13"}


async def greet(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


async def accepting_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app that only speaks WebSocket, whatever the scope."""
    await receive()
    await send({"type": "websocket.accept"})


def test_websocket_only_route_is_not_found_over_http() -> None:
    app = Starlette(routes=[WebSocketRoute("/ws", greet)])
    adapter = Adapter(app, lifespan="off", access_log=False)
    response = adapter(http_event(path="/ws", headers=UPGRADE_HEADERS))
    assert response == {
        "isBase64Encoded": False,
        "statusCode": 404,
        "headers": {"content-length": "9", "content-type": "text/plain; charset=utf-8"},
        "body": "Not Found",
    }


def test_websocket_messages_are_reported_as_unsupported(caplog: pytest.LogCaptureFixture) -> None:
    adapter = Adapter(accepting_app, lifespan="off", access_log=False)
    with caplog.at_level(logging.ERROR, logger="scf_asgi"):
        response = adapter(http_event(path="/ws", headers=UPGRADE_HEADERS))
    errors = [record.exc_info[1] for record in caplog.records if record.exc_info]
    assert response["statusCode"] == 500
    assert len(errors) == 1
    assert "WebSocket" in str(errors[0])


def test_gateway_websocket_event_is_named_in_the_error() -> None:
    event = {
        "websocket": {
            "action": "connecting",
            "secConnectionID": "f2c3a1e0",
            "secWebSocketProtocol": "chat",
            "url": "/ws",
        },
        "requestContext": {"serviceId": "service-abc", "path": "/ws", "stage": "release"},
    }
    adapter = Adapter(Starlette(routes=[WebSocketRoute("/ws", greet)]), lifespan="off")
    with pytest.raises(UnhandledEventError, match="WebSocket") as raised:
        adapter(event)
    assert "event_handler" in str(raised.value)
