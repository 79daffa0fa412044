from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def info(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(
        {
            "name": name,
            "q": request.GET.getlist("q"),
            "absolute": request.build_absolute_uri(),
            "secure": request.is_secure(),
            "script_name": request.META.get("SCRIPT_NAME"),
        }
    )


urlpatterns = [path("info/<str:name>", info)]
