"""Template events of each trigger type, for ``scf-asgi event TYPE`` (as the old ``scf`` CLI's
``generate-event`` gave them): edit one and send it with ``scf-asgi invoke --event -``.

The shapes are those of the spec's section 4 and its sample events; values are placeholders.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["TEMPLATES", "template"]

_REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
_HOST = "service-k0fbs6ox-1250000000.gz.apigw.tencentcs.com"


# The imports are in the functions: building the command line's parser (for any command but
# `run`, `scf-asgi web` at a web function's cold start among them) loads this module's names only.


def _apigw() -> dict[str, Any]:
    from .translate import event_from_http

    return event_from_http(
        "GET",
        "/release/hello?name=scf",
        [("Host", _HOST), ("Accept", "application/json"), ("User-Agent", "curl/8.5.0")],
        b"",
        source_ip="203.0.113.7",
        request_id=_REQUEST_ID.replace("-", ""),
        service_id="service-k0fbs6ox",
        forwarded_proto="https",
    )


def _function_url() -> dict[str, Any]:
    from .translate import function_url_event_from_http

    return function_url_event_from_http(
        "POST",
        "/items?tag=a&tag=b",
        [
            ("Host", "1250000000-k2b8qv3nrl.ap-guangzhou.tencentscf.com"),
            ("Content-Type", "application/json"),
            ("User-Agent", "curl/8.5.0"),
        ],
        b'{"name": "widget"}',
        source_ip="198.51.100.23",
        forwarded_proto="https",
    )


def _timer() -> dict[str, Any]:
    return {
        "Type": "Timer",
        "TriggerName": "nightly-report",
        "Time": "2024-01-01T00:00:00Z",
        "Message": "user-defined message",
    }


def _cos() -> dict[str, Any]:
    return {
        "Records": [
            {
                "cos": {
                    "cosSchemaVersion": "1.0",
                    "cosObject": {
                        "url": "http://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com/a.txt",
                        "meta": {"x-cos-request-id": "NWMxOWY4MGFf", "Content-Type": "text/plain"},
                        "vid": "",
                        "key": "/1250000000/examplebucket/a.txt",
                        "size": 1024,
                    },
                    "cosBucket": {
                        "region": "gz",
                        "name": "examplebucket",
                        "appid": "1250000000",
                    },
                    "cosNotificationId": "unknown",
                },
                "event": {
                    "eventName": "cos:ObjectCreated:*",
                    "eventVersion": "1.0",
                    "eventTime": 1704067200,
                    "eventSource": "qcs::cos",
                    "requestParameters": {
                        "requestSourceIP": "203.0.113.7",
                        "requestHeaders": {"Authorization": "q-sign-algorithm=sha1"},
                    },
                    "eventQueue": "qcs:0:lambda:gz:appid/1250000000:default.my-function.$LATEST",
                    "reservedInfo": "",
                    "reqid": 179398952,
                },
            }
        ]
    }


def _cmq() -> dict[str, Any]:
    return {
        "Records": [
            {
                "CMQ": {
                    "type": "topic",
                    "topicOwner": 1250000000,
                    "topicName": "example-topic",
                    "subscriptionName": "example-subscription",
                    "publishTime": "2024-01-01T00:00:00.000Z",
                    "msgId": "123345346",
                    "requestId": "123345346",
                    "msgBody": "Hello from CMQ!",
                    "msgTag": "tag1,tag2",
                }
            }
        ]
    }


def _ckafka() -> dict[str, Any]:
    return {
        "Records": [
            {
                "Ckafka": {
                    "topic": "example-topic",
                    "partition": 0,
                    "offset": 36,
                    "msgKey": "key",
                    "msgBody": "Hello from CKafka!",
                }
            }
        ]
    }


def _cls() -> dict[str, Any]:
    import base64
    import gzip
    import json

    # The platform sends the log batch gzip-compressed, then base64-encoded.
    batch = {
        "topic_id": "xxxx-xx-xx-xx-yyyyyyyy",
        "topic_name": "example-topic",
        "records": [{"timestamp": "1704067200000", "content": "a log line"}],
    }
    data = gzip.compress(json.dumps(batch).encode("utf-8"), mtime=0)
    return {"clslogs": {"data": base64.b64encode(data).decode("ascii")}}


TEMPLATES: dict[str, Callable[[], dict[str, Any]]] = {
    "apigw": _apigw,
    "function-url": _function_url,
    "timer": _timer,
    "cos": _cos,
    "cmq": _cmq,
    "ckafka": _ckafka,
    "cls": _cls,
}


def template(kind: str) -> dict[str, Any]:
    """The template event of trigger type `kind` (one of `TEMPLATES`)."""
    return TEMPLATES[kind]()
