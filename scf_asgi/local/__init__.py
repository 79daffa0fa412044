"""`scf-asgi local`: run a function on this machine the way SCF and its API gateway run it.

The package (the ``[local]`` extra: uvicorn, Starlette, watchfiles, httpx) is an outer layer:
it imports the core, the core never imports it, and a deployed function never loads it.

    translate.py     HTTP request -> event (API gateway, function URL), integration response
                     -> HTTP; pure, no I/O (importable without the extra)
    runtime_api.py   the platform's side of the Custom Runtime API, a Starlette app
    instance.py      function instances: start, time out, restart; the pool of --instances N
    watchdog.py      the process that ends the instances should the emulator die
    front_door.py    the gateway as an ASGI app (or a web function's proxy, --web)
    inspector.py     the invocation inspector at /_scf/ (static/: its page)
    emulator.py      all of it on two uvicorn.Servers (front door, runtime API), and its stop
    config.py        LocalConfig: the settings and their defaults, the instance's command and
                     environment
    command.py       `scf-asgi local`, `scf-asgi invoke`, `scf-asgi event`
    templates.py     the template events of `scf-asgi event`
    instance_site/   the sitecustomize that makes the code directory read-only for an instance

Choices where the platform gives no answer or a browser needs help:

- Host: the browser's own Host (``127.0.0.1:8000``) goes into the event, so absolute URLs the
  app builds point back at the emulator, and the core's ``stage_prefix="auto"`` adds no
  ``/release`` root path. ``--host-header`` sends any Host, e.g. a default gateway domain.
  Unless ``--host-header`` is given, ``x-forwarded-proto: http`` is added when the client sent
  none, since the core assumes https (the gateway's scheme) without it.
- Paths that do not start with ``/<stage>`` are passed on unchanged rather than refused, as
  through a custom domain.
- Errors made here are JSON ``{"errno": <status>, "error": "<what happened>"}``; a malformed
  result gets the gateway's own ``{"errno":403,"error":"Invalid scf response format..."}``
  (with status 502) and the reason is logged.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..errors import IntegrationFormatError
    from .translate import (
        MALFORMED_BODY,
        event_from_http,
        function_url_event_from_http,
        http_from_integration,
    )

__all__ = [
    "MALFORMED_BODY",
    "IntegrationFormatError",
    "event_from_http",
    "function_url_event_from_http",
    "http_from_integration",
]


def __getattr__(name: str) -> Any:
    # The translation loads on first use: `scf_asgi.cli` imports `scf_asgi.local.command` for
    # every command's parser, `scf-asgi web` on a web function's cold start included.
    if name in __all__:
        from . import translate

        return getattr(translate, name)
    raise AttributeError(f"module 'scf_asgi.local' has no attribute {name!r}")
