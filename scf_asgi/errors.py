"""The exceptions scf-asgi raises, all in one short, flat tree.

    SCFAsgiError                 base class: catch this to catch everything below
    ├── ConfigurationError       bad options, an app that cannot be imported, missing
    │                            environment variables
    ├── RuntimeAPIError          the Custom Runtime API could not be reached, or answered non-200
    ├── InvalidEventError        an event that cannot be read: not JSON, not an object, a
    │   │                        field of the wrong type or with a control character, a body
    │   │                        that claims base64 but is not (an HTTP event: 400)
    │   └── RequestTooLarge      a request body over the limit (an HTTP event: 413)
    ├── UnhandledEventError      a non-HTTP event (timer, COS, ...) and no ``event_handler``
    ├── AppError                 the app broke the ASGI/WSGI contract (bad message order, no
    │                            response, ``start_response`` misuse)
    └── IntegrationFormatError   a function's result is not an integration response the
                                 gateway accepts (the emulator's check of an answer)

Exceptions raised *by the app itself* are not wrapped: they are logged with the request id and
answered with a 500 (or an invocation error, if the adapter is configured so).
"""

from __future__ import annotations

__all__ = [
    "AppError",
    "ConfigurationError",
    "IntegrationFormatError",
    "InvalidEventError",
    "RequestTooLarge",
    "RuntimeAPIError",
    "SCFAsgiError",
    "UnhandledEventError",
]


class SCFAsgiError(Exception):
    """Base class of every error scf-asgi raises."""


class ConfigurationError(SCFAsgiError):
    """An option, the app reference or the environment is not usable."""


class RuntimeAPIError(SCFAsgiError):
    """The Custom Runtime API could not be reached, or it answered with a non-200 status."""


class InvalidEventError(SCFAsgiError, ValueError):
    """The event cannot be read (not JSON, not an object, or an undecodable body)."""


class RequestTooLarge(InvalidEventError):
    """An HTTP request's body is larger than the adapter takes (``max_body_bytes``)."""


class UnhandledEventError(SCFAsgiError):
    """A non-HTTP event arrived and no ``event_handler`` was configured for it."""


class AppError(SCFAsgiError):
    """The app broke the ASGI or WSGI contract."""


class IntegrationFormatError(SCFAsgiError, ValueError):
    """A function's result is not an integration response the API gateway accepts."""
