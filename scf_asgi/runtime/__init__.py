"""The Custom Runtime side of scf-asgi: the only code that talks to the runtime API.

http11   HTTP/1.1 with no I/O: request bytes, a response parser fed what arrives
client   RuntimeClient: one keep-alive socket pumped through the parser, reconnects
loop     the invocation loop (ready, next, one answer per event, shutdown on a signal)
         and serve(app)
"""

from __future__ import annotations

from .client import RuntimeClient
from .loop import Invocation, ShutdownGuard, run, serve

__all__ = ["Invocation", "RuntimeClient", "ShutdownGuard", "run", "serve"]
