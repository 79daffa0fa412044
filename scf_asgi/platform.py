"""Facts of the SCF platform that scf-asgi depends on, each written once.

The environment variables the platform sets for a function instance (and that the local
emulator sets for its instances), the limits it enforces, and the one reader of the
per-process facts. Sources: ``shared/spec/scf-custom-runtime.md`` (sections 1, 1b and 1c).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CODE_DIR",
    "DEFAULT_INIT_TIMEOUT_MS",
    "DEFAULT_RETRY_SECONDS",
    "ENV_APPID",
    "ENV_FUNCTION_NAME",
    "ENV_FUNCTION_VERSION",
    "ENV_HANDLER",
    "ENV_NAMESPACE",
    "ENV_PORT",
    "ENV_REGION",
    "ENV_RETRY_SECONDS",
    "ENV_RUNENV",
    "ENV_RUNTIME",
    "ENV_RUNTIME_API",
    "ENV_RUNTIME_API_PORT",
    "ENV_SECRET_ID",
    "ENV_SECRET_KEY",
    "ENV_SESSION_TOKEN",
    "ENV_UIN",
    "ENV_USER_CODE_ROOT",
    "MAX_CODE_UNPACKED_BYTES",
    "MAX_EVENT_BYTES",
    "MAX_INLINE_ZIP_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MAX_WEB_HEADER_BYTES",
    "NEXT_MEMORY_LIMIT",
    "NEXT_REQUEST_ID",
    "NEXT_TIME_LIMIT",
    "RUNTIME_ERROR",
    "RUNTIME_NEXT",
    "RUNTIME_READY",
    "RUNTIME_RESPONSE",
    "SECRET_VARIABLES",
    "TARGET_GLIBC",
    "TARGET_MACHINE",
    "WEB_FUNCTION_PORT",
    "WEB_REQUEST_ID_HEADER",
    "FunctionFacts",
    "function_facts",
]

# -- the instance's environment (section 1) ----------------------------------------------------
ENV_RUNTIME_API = "SCF_RUNTIME_API"  # host of the Custom Runtime API
ENV_RUNTIME_API_PORT = "SCF_RUNTIME_API_PORT"
ENV_HANDLER = "_HANDLER"  # the function's handler setting, e.g. "index.main_handler"
ENV_FUNCTION_NAME = "SCF_FUNCTIONNAME"
ENV_FUNCTION_VERSION = "SCF_FUNCTIONVERSION"  # "$LATEST" or a published version
ENV_NAMESPACE = "SCF_NAMESPACE"
ENV_RUNTIME = "SCF_RUNTIME"
ENV_REGION = "TENCENTCLOUD_REGION"
ENV_APPID = "TENCENTCLOUD_APPID"
ENV_UIN = "TENCENTCLOUD_UIN"
ENV_RUNENV = "TENCENTCLOUD_RUNENV"  # "SCF"
ENV_USER_CODE_ROOT = "USER_CODE_ROOT"  # "/var/user/"
CODE_DIR = "/var/user"  # where the code package is unpacked [I], read-only
# The function role's temporary credentials: never logged, never written into a package.
ENV_SECRET_ID = "TENCENTCLOUD_SECRETID"
ENV_SECRET_KEY = "TENCENTCLOUD_SECRETKEY"
ENV_SESSION_TOKEN = "TENCENTCLOUD_SESSIONTOKEN"
SECRET_VARIABLES = (ENV_SECRET_KEY, ENV_SESSION_TOKEN)

# -- the Custom Runtime API (section 1) ----------------------------------------------------------
RUNTIME_READY = "/runtime/init/ready"
RUNTIME_NEXT = "/runtime/invocation/next"
RUNTIME_RESPONSE = "/runtime/invocation/response"
RUNTIME_ERROR = "/runtime/invocation/error"
# The headers of a /next answer that say which invocation it is and what it may use.
NEXT_REQUEST_ID = "request_id"
NEXT_MEMORY_LIMIT = "memory_limit_in_mb"
NEXT_TIME_LIMIT = "time_limit_in_ms"

# scf-asgi's own setting: how long the runtime client retries an unreachable runtime API.
ENV_RETRY_SECONDS = "SCF_ASGI_RUNTIME_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 10.0

# -- limits ------------------------------------------------------------------------------------
# A synchronous invocation's event and result: "about 6 MB" in the documentation.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# The largest event body the runtime client reads: the payload limit with headroom. A runtime
# API that announces more (a broken Content-Length, a chunk size of FFFFFFFFFFFFFFFF) has its
# event refused rather than read into memory.
MAX_EVENT_BYTES = 2 * MAX_PAYLOAD_BYTES
# Web functions (section 1): request and response headers, and the port the server listens on.
MAX_WEB_HEADER_BYTES = 4 * 1024
WEB_FUNCTION_PORT = 9000
# scf-asgi's own setting: the port a web function's server listens on instead of
# WEB_FUNCTION_PORT (the local emulator and tests give each instance a free port).
ENV_PORT = "PORT"
# The header carrying the invocation's request id on a web function's requests [I: the docs
# name it on error answers; the platform's proxy is taken to send it on requests too].
WEB_REQUEST_ID_HEADER = "x-scf-request-id"
# What a code package runs on: Linux x86_64 with glibc 2.17 or newer [I: the CentOS 7 base of
# the runtime images], so wheels tagged manylinux2014 (manylinux_2_17) or older.
TARGET_MACHINE = "x86_64"
TARGET_GLIBC = (2, 17)
# The time an instance has to post /runtime/init/ready (InitTimeout), by default (section 1).
DEFAULT_INIT_TIMEOUT_MS = 65_000
# Code packages (section 1c): a zip uploaded inline with the API call, and unpacked code.
MAX_INLINE_ZIP_BYTES = 20 * 1024 * 1024
MAX_CODE_UNPACKED_BYTES = 500 * 1024 * 1024


class FunctionFacts:
    """What the platform says about the function, the same for every invocation of a process."""

    __slots__ = ("name", "version", "namespace", "region")

    def __init__(self, name: str, version: str, namespace: str, region: str) -> None:
        self.name = name
        self.version = version
        self.namespace = namespace
        self.region = region

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FunctionFacts:
        get = environ.get
        return cls(
            get(ENV_FUNCTION_NAME, ""),
            get(ENV_FUNCTION_VERSION, ""),
            get(ENV_NAMESPACE, ""),
            get(ENV_REGION, ""),
        )


_FACTS: FunctionFacts | None = None


def function_facts() -> FunctionFacts:
    """The function's facts from this process's environment, read on first use."""
    global _FACTS
    if _FACTS is None:
        _FACTS = FunctionFacts.from_environ(os.environ)
    return _FACTS
