"""The framework compatibility matrix, as data: which app stands for which framework, and what
its tests cover.

The tests are parametrised from this data (`harness.covers`) and the README table is printed
from it (`table.py`), so a framework is only listed with a feature when a test checks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Feature key -> how the README names it. Order is the order of the README.
FEATURES: dict[str, str] = {
    "routing": "path parameters and 404",
    "query": "repeated and encoded query keys",
    "json": "JSON in and out",
    "form": "urlencoded form",
    "upload": "multipart binary upload",
    "cookies": "cookies in and two `Set-Cookie` out",
    "redirect": "redirect to the URL builder's absolute URL under a base path and a stage",
    "static": "binary static file",
    "stream": "streamed response",
    "head": "HEAD",
    "cors": "CORS preflight",
    "errors": "unhandled exception is a 500 with no traceback",
    "lifespan": "startup and shutdown hooks (ASGI lifespan)",
    "openapi": "`/docs` and `/openapi.json` under a base path",
    "csrf": "CSRF middleware on, form posted with its token",
    "admin": "admin login page",
    "proxy_ssl": "`build_absolute_uri()`, `SECURE_PROXY_SSL_HEADER`",
}

# What every app in tests/frameworks/apps answers (see apps/common.py).
COMMON = (
    "routing",
    "query",
    "json",
    "form",
    "upload",
    "cookies",
    "redirect",
    "static",
    "stream",
    "head",
    "cors",
    "errors",
)


@dataclass(frozen=True)
class Framework:
    key: str  # test id, e.g. "falcon-asgi"
    name: str  # as the README shows it
    interface: str  # "WSGI" or "ASGI"
    distribution: str | None  # whose installed version is the version tested; None: no package
    app: str  # "module:attribute" inside tests/frameworks/apps
    features: tuple[str, ...]
    # Features that do not pass yet because the adapter lacks something: feature -> reason.
    # Their tests run as strict xfails, and the README does not claim them.
    pending: dict[str, str] = field(default_factory=dict)

    def covered(self) -> tuple[str, ...]:
        return tuple(feature for feature in self.features if feature not in self.pending)


FRAMEWORKS: tuple[Framework, ...] = (
    Framework("flask", "Flask", "WSGI", "flask", "flask_app:app", COMMON),
    Framework(
        "fastapi", "FastAPI", "ASGI", "fastapi", "fastapi_app:app", (*COMMON, "lifespan", "openapi")
    ),
    Framework(
        "django-wsgi",
        "Django",
        "WSGI",
        "django",
        "django_app:wsgi_app",
        (*COMMON, "csrf", "admin", "proxy_ssl"),
    ),
    Framework(
        "django-asgi",
        "Django",
        "ASGI",
        "django",
        "django_app:asgi_app",
        (*COMMON, "csrf", "admin", "proxy_ssl"),
    ),
    Framework(
        "starlette", "Starlette", "ASGI", "starlette", "starlette_app:app", (*COMMON, "lifespan")
    ),
    Framework("quart", "Quart", "ASGI", "quart", "quart_app:app", (*COMMON, "lifespan")),
    Framework("falcon-wsgi", "Falcon", "WSGI", "falcon", "falcon_wsgi_app:app", COMMON),
    Framework(
        "falcon-asgi",
        "Falcon",
        "ASGI",
        "falcon",
        "falcon_asgi_app:app",
        (*COMMON, "lifespan"),
    ),
    Framework(
        "litestar", "Litestar", "ASGI", "litestar", "litestar_app:app", (*COMMON, "lifespan")
    ),
    Framework("bottle", "Bottle", "WSGI", "bottle", "bottle_app:app", COMMON),
    Framework("pyramid", "Pyramid", "WSGI", "pyramid", "pyramid_app:app", COMMON),
    Framework("wsgi", "plain WSGI callable", "WSGI", None, "wsgi_app:app", COMMON),
    Framework("asgi", "plain ASGI callable", "ASGI", None, "asgi_app:app", (*COMMON, "lifespan")),
)


def frameworks_with(feature: str) -> list[Framework]:
    if feature not in FEATURES:
        raise KeyError(f"unknown feature {feature!r}; add it to FEATURES")
    return [framework for framework in FRAMEWORKS if feature in framework.features]
