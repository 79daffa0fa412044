"""The Django app of the real-app rows: one JSON view behind the default middleware of a new
project (django_settings.py), as its WSGI application (the same request and answer as
app_fastapi.py: see events.REAL_ANSWER). This module is also the URLconf."""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt  # a JSON API called with cookies but no CSRF token, as such views are
@require_POST
def greet(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    response = JsonResponse(
        {
            "hello": data["name"],
            "tags": data.get("tags", []),
            "count": data.get("count", 1),
            "q": request.GET["q"],
            "page": int(request.GET.get("page", 1)),
            "user": request.COOKIES.get("user", ""),
        }
    )
    response.set_cookie("session", "s3cr3t", path="/", httponly=True)
    response.set_cookie("theme", "dark", path="/", samesite="Lax")
    return response


urlpatterns = [path("greet", greet)]

application = get_wsgi_application()
