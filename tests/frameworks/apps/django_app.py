"""Django, served both as WSGI (`wsgi_app`) and as ASGI (`asgi_app`) from one configuration.

CSRF protection is on (the API-style views are `csrf_exempt`, `/csrf-form` is not), the admin
is installed, and `SECURE_PROXY_SSL_HEADER` trusts `X-Forwarded-Proto` as a proxy would set it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import django
from django.conf import settings

from .common import SECRET, STATIC_DIR, STREAM_PARTS, cors_headers

settings.configure(
    DEBUG=False,
    SECRET_KEY="framework-matrix-tests-only",
    ALLOWED_HOSTS=[".apigw.tencentcs.com", "api.example.com"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
    ],
    MIDDLEWARE=[
        f"{__name__}.cors_middleware",
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
    STATIC_URL="static/",
    USE_TZ=True,
)
django.setup()

# Imported after setup(): these need the configured settings and app registry.
from django.contrib import admin  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import (  # noqa: E402
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path, re_path, reverse  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_POST, require_safe  # noqa: E402
from django.views.static import serve  # noqa: E402

CSRF_FORM = engines["django"].from_string(
    '<form method="post" action="{{ request.path }}">{% csrf_token %}'
    '<input name="name"><button type="submit">Send</button></form>'
)


def cors_middleware(get_response: Callable[[HttpRequest], HttpResponseBase]) -> Any:
    def middleware(request: HttpRequest) -> HttpResponseBase:
        is_preflight = (
            request.method == "OPTIONS" and "access-control-request-method" in request.headers
        )
        response = HttpResponse(status=204) if is_preflight else get_response(request)
        for name, value in cors_headers(request.headers.get("origin")).items():
            response[name] = value
        return response

    return middleware


@require_safe
def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return JsonResponse({"id": item_id})


def query(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"q": request.GET.getlist("q")})


@csrf_exempt
@require_POST
def echo_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"received": json.loads(request.body)})


@csrf_exempt
@require_POST
def form(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"name": request.POST["name"], "note": request.POST["note"]})


@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    upload = request.FILES["file"]
    response = HttpResponse(upload.read(), content_type="application/octet-stream")
    response["X-Upload-Name"] = upload.name
    return response


def cookies(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"session": request.COOKIES.get("session")})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


def go(request: HttpRequest) -> HttpResponseBase:
    return redirect(request.build_absolute_uri(reverse("item", kwargs={"item_id": 7})))


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter(STREAM_PARTS), content_type="text/plain")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET)


def csrf_form(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return JsonResponse({"name": request.POST["name"]})
    return HttpResponse(CSRF_FORM.render({}, request))


def secure(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {"is_secure": request.is_secure(), "absolute_uri": request.build_absolute_uri()}
    )


urlpatterns = [
    path("items/<int:item_id>", item, name="item"),
    path("query", query),
    path("json", echo_json),
    path("form", form),
    path("upload", upload),
    path("cookies", cookies),
    path("redirect", go),
    path("stream", stream),
    path("boom", boom),
    path("csrf-form", csrf_form),
    path("secure", secure),
    path("admin/", admin.site.urls),
    re_path(r"^static/(?P<path>.*)$", serve, {"document_root": STATIC_DIR}),
]

wsgi_app = get_wsgi_application()
asgi_app = get_asgi_application()
