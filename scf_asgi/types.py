"""Shapes of the data that crosses the platform boundary.

The TypedDicts describe what the API gateway sends and what it accepts back; every field of an
incoming event is optional because console test events and older gateway versions omit many.
"""

from __future__ import annotations

from typing import Any, TypedDict, Union

__all__ = [
    "GatewayEvent",
    "HeaderValue",
    "IntegrationResponse",
    "RequestContext",
]

HeaderValue = Union[str, list[str]]


class RequestContext(TypedDict, total=False):
    serviceId: str
    path: str
    httpMethod: str
    requestId: str
    identity: dict[str, Any]
    sourceIp: str
    stage: str


class GatewayEvent(TypedDict, total=False):
    """An API gateway trigger event (Tencent's shape, not AWS's)."""

    requestContext: RequestContext
    httpMethod: str
    path: str
    headers: dict[str, HeaderValue] | None
    # The whole query; ``queryStringParameters`` holds only the gateway-configured parameters.
    queryString: dict[str, str | list[str] | None] | None
    queryStringParameters: dict[str, str] | None
    pathParameters: dict[str, str] | None
    headerParameters: dict[str, str] | None
    stageVariables: dict[str, str] | None
    body: str | None
    isBase64Encoded: bool


class IntegrationResponse(TypedDict):
    """What the gateway turns back into an HTTP response."""

    isBase64Encoded: bool
    statusCode: int
    headers: dict[str, HeaderValue]
    body: str
