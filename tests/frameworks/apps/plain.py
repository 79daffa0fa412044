"""Standard-library request parsing shared by the framework-less WSGI and ASGI apps."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """multipart/form-data -> {field name: (filename or "", raw bytes)}."""
    document = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    message = BytesParser(policy=HTTP).parsebytes(document)
    fields: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename() or "", payload if payload is not None else b"")
    return fields
