"""What users of one framework hit in practice beyond the common cases."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from .harness import BASE_PATH, CUSTOM_HOST, DEFAULT_HOST, call, covers, header, outline
from .matrix import Framework


@covers("openapi")
@pytest.mark.parametrize(
    ("host", "prefix"),
    [(CUSTOM_HOST, BASE_PATH), (DEFAULT_HOST, "/release")],
    ids=["base-path", "stage"],
)
def test_docs_and_openapi_under_the_public_prefix(
    framework: Framework, host: str, prefix: str
) -> None:
    path = BASE_PATH if host == CUSTOM_HOST else ""
    docs = call(framework, path=f"{path}/docs", host=host)
    schema = call(framework, path=f"{path}/openapi.json", host=host)
    document = json.loads(schema["body"])
    assert (docs["statusCode"], f"url: '{prefix}/openapi.json'" in docs["body"]) == (200, True)
    assert (schema["statusCode"], document["servers"], "/items/{item_id}" in document["paths"]) == (
        200,
        [{"url": prefix}],
        True,
    )


def cookie_value(response: dict[str, object], name: str) -> str:
    values = header(response, "set-cookie")
    for value in values if isinstance(values, list) else [values]:
        cookie_name, _, rest = value.strip().partition("=")
        if cookie_name == name:
            return rest.partition(";")[0]
    raise AssertionError(f"no {name} cookie in {values!r}")


@covers("csrf")
def test_form_posted_with_its_csrf_token(framework: Framework) -> None:
    page = call(framework, path="/csrf-form")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page["body"])
    assert token is not None, page["body"]
    assert 'action="/release/csrf-form"' in page["body"]
    origin = f"https://{DEFAULT_HOST}"
    form = {"name": "Zoë", "csrfmiddlewaretoken": token.group(1)}
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "cookie": f"csrftoken={cookie_value(page, 'csrftoken')}",
        "origin": origin,
    }
    accepted = call(
        framework, method="POST", path="/csrf-form", headers=headers, body=urlencode(form)
    )
    without_token = call(
        framework,
        method="POST",
        path="/csrf-form",
        headers=headers,
        body=urlencode({"name": "Zoë"}),
    )
    assert (outline(accepted), without_token["statusCode"]) == (
        {"status": 200, "type": "application/json", "base64": False, "body": {"name": "Zoë"}},
        403,
    )


@covers("admin")
def test_admin_login_page_renders_under_the_stage(framework: Framework) -> None:
    response = call(framework, path="/admin/login/", query={"next": "/admin/"})
    assert response["statusCode"] == 200
    assert "<title>Log in | Django site admin</title>" in response["body"]
    assert 'action="/release/admin/login/?next=%2Fadmin%2F"' in response["body"]


@covers("proxy_ssl")
@pytest.mark.parametrize(
    ("forwarded_proto", "expected"),
    [
        (None, {"is_secure": True, "absolute_uri": f"https://{DEFAULT_HOST}/release/secure?x=1"}),
        (
            "https",
            {"is_secure": True, "absolute_uri": f"https://{DEFAULT_HOST}/release/secure?x=1"},
        ),
        ("http", {"is_secure": False, "absolute_uri": f"http://{DEFAULT_HOST}/release/secure?x=1"}),
    ],
    ids=["no-header", "forwarded-https", "forwarded-http"],
)
def test_build_absolute_uri_and_secure_proxy_ssl_header(
    framework: Framework, forwarded_proto: str | None, expected: dict[str, object]
) -> None:
    headers = {"x-forwarded-proto": forwarded_proto} if forwarded_proto else {}
    response = call(framework, path="/secure", query={"x": "1"}, headers=headers)
    assert outline(response) == {
        "status": 200,
        "type": "application/json",
        "base64": False,
        "body": expected,
    }
