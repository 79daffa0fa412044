"""Startup and shutdown hooks of the ASGI frameworks through the real runtime loop.

In process, `Adapter.__call__` starts the lifespan on the first event and never shuts it down;
`scf-asgi run` does both, the shutdown on SIGTERM. One child process per framework.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ..runtime_api import FakeRuntimeAPI, RuntimeProcess
from .apps.common import shutdown_line
from .harness import APPS_PACKAGE, covers, http_event
from .matrix import Framework


@pytest.fixture
def runtime_api() -> Iterator[FakeRuntimeAPI]:
    api = FakeRuntimeAPI()
    yield api
    api.close()


@covers("lifespan")
def test_shutdown_hook_runs_on_sigterm(framework: Framework, runtime_api: FakeRuntimeAPI) -> None:
    process = RuntimeProcess(
        runtime_api, [f"{APPS_PACKAGE}.{framework.app}", "--base-path", "/api", "--no-access-log"]
    )
    try:
        answer = runtime_api.invoke(http_event(path="/lifespan"))
    finally:
        exit_code = process.stop()
    marker = shutdown_line(framework.key)
    assert (answer.kind, json.loads(answer.json()["body"])) == ("response", {"started": True})
    assert (exit_code, marker in process.output) == (0, True), process.output
