"""`LocalConfig`: the settings of one `scf-asgi local` run, each default written here once (the
command's flags leave an option not given to it), checked once, and what follows from them
(the instance's command line, working directory and environment). Standard library only: the
command module reads it without the [local] extra installed."""

from __future__ import annotations

import os
import sys

from ..errors import ConfigurationError
from ..platform import (
    CUSTOM_RUNTIME,
    DEFAULT_INIT_TIMEOUT_MS,
    ENV_APPID,
    ENV_FUNCTION_NAME,
    ENV_FUNCTION_VERSION,
    ENV_HANDLER,
    ENV_NAMESPACE,
    ENV_REGION,
    ENV_RUNENV,
    ENV_RUNTIME,
    ENV_RUNTIME_API,
    ENV_RUNTIME_API_PORT,
    ENV_SECRET_ID,
    ENV_SECRET_KEY,
    ENV_SESSION_TOKEN,
    ENV_UIN,
    ENV_USER_CODE_ROOT,
    ENV_WEB_HOST,
    LATEST_VERSION,
)
from .instance_site.sitecustomize import ENV_READ_ONLY

__all__ = [
    "ENV_READ_ONLY",
    "LOOPBACK",
    "PLACEHOLDER_CREDENTIALS",
    "RESULT_HEADER",
    "TRIGGERS",
    "LocalConfig",
]

# The HTTP entry points `scf-asgi local --trigger` can play.
TRIGGERS = ("apigw", "function-url")

# The address the emulator's own sockets use (the runtime API, the instances' servers).
LOOPBACK = "127.0.0.1"
# On the answer to a raw event (`scf-asgi invoke`, a replay): what the instance posted
# ("response" or "error").
RESULT_HEADER = "X-Scf-Result"
# The sitecustomize module in instance_site/, which PYTHONPATH puts first, reads ENV_READ_ONLY.
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance_site")
# The role credentials an instance finds in its environment: placeholders, never the
# developer's own (a TENCENTCLOUD_SECRETID in the shell does not reach the function).
PLACEHOLDER_CREDENTIALS = {
    ENV_SECRET_ID: "AKIDLOCALPLACEHOLDER",
    ENV_SECRET_KEY: "local-placeholder-secret-key",
    ENV_SESSION_TOKEN: "local-placeholder-session-token",
}


class LocalConfig:
    """The options of `scf-asgi local` (see the command's help for each), one annotation each.
    The class attributes are the defaults: the command's help shows them, and an option not
    given keeps its one. A plain class, not a dataclass: the command line reads it whenever it
    builds its parser, at every cold start of a web function (`scf-asgi web`) too, where
    dataclasses would add 10 ms of imports."""

    app: str | None = None
    handler: str | None = None  # the _HANDLER setting; app when None
    host: str = LOOPBACK
    port: int = 8000
    stage: str = "release"
    trigger: str = TRIGGERS[0]
    bootstrap: str | None = None
    web: bool = False
    instances: int = 1
    timeout_ms: int = 3000
    memory_mb: int = 128
    init_timeout_ms: int = DEFAULT_INIT_TIMEOUT_MS
    host_header: str | None = None
    function_name: str = "scf-asgi-local"
    region: str = "ap-guangzhou"
    environment: dict[str, str]  # the function's variables (none by default)
    reload: bool = False
    read_only: bool = True
    inspector_path: str | None = "/_scf"
    history: int = 100
    access_log: bool = True
    run_args: list[str]  # passed on to `scf-asgi run` (none by default)

    def __init__(
        self,
        *,
        app: str | None = app,
        handler: str | None = handler,
        host: str = host,
        port: int = port,
        stage: str = stage,
        trigger: str = trigger,
        bootstrap: str | None = bootstrap,
        web: bool = web,
        instances: int = instances,
        timeout_ms: int = timeout_ms,
        memory_mb: int = memory_mb,
        init_timeout_ms: int = init_timeout_ms,
        host_header: str | None = host_header,
        function_name: str = function_name,
        region: str = region,
        environment: dict[str, str] | None = None,
        reload: bool = reload,
        read_only: bool = read_only,
        inspector_path: str | None = inspector_path,
        history: int = history,
        access_log: bool = access_log,
        run_args: list[str] | None = None,
    ) -> None:
        self.app = app
        self.handler = handler
        self.host = host
        self.port = port
        self.stage = stage
        self.trigger = trigger
        self.bootstrap = bootstrap
        self.web = web
        self.instances = instances
        self.timeout_ms = timeout_ms
        self.memory_mb = memory_mb
        self.init_timeout_ms = init_timeout_ms
        self.host_header = host_header
        self.function_name = function_name
        self.region = region
        self.environment = dict(environment or {})
        self.reload = reload
        self.read_only = read_only
        self.inspector_path = inspector_path
        self.history = history
        self.access_log = access_log
        self.run_args = list(run_args or [])

    def check(self) -> None:
        """Normalise and check the settings; ConfigurationError names the first bad one."""
        stage = self.stage.strip("/")
        if not stage or "/" in stage:
            raise ConfigurationError(f"--stage must be one path segment, got {self.stage!r}")
        self.stage = stage
        if self.trigger not in TRIGGERS:
            raise ConfigurationError(f"--trigger must be one of {', '.join(TRIGGERS)}")
        for name, value in (
            ("--timeout-ms", self.timeout_ms),
            ("--init-timeout-ms", self.init_timeout_ms),
            ("--memory-mb", self.memory_mb),
            ("--instances", self.instances),
            ("--history", self.history),
        ):
            if value < 1:
                raise ConfigurationError(f"{name} must be > 0, got {value}")
        if self.inspector_path is not None:
            path = "/" + self.inspector_path.strip("/")
            if path == "/":
                raise ConfigurationError("--inspector-path cannot be /: the app is served there")
            self.inspector_path = path
        if self.web and not self.bootstrap:
            raise ConfigurationError("--web needs --bootstrap PATH (the scf_bootstrap to run)")
        self.command()  # checks the app or bootstrap

    def command(self) -> tuple[list[str], str]:
        """The instance's command line and working directory (the code directory)."""
        if self.bootstrap:
            path = os.path.abspath(self.bootstrap)
            if not os.path.isfile(path):
                raise ConfigurationError(f"bootstrap {self.bootstrap!r} is not a file")
            if not os.access(path, os.X_OK):
                raise ConfigurationError(
                    f"bootstrap {self.bootstrap!r} is not executable (the platform runs it "
                    f"directly: chmod +x {self.bootstrap})"
                )
            return [path], os.path.dirname(path)
        if not self.app:
            raise ConfigurationError("no app given: pass MODULE:ATTR (or --bootstrap PATH)")
        return [sys.executable, "-m", "scf_asgi", "run", self.app, *self.run_args], os.getcwd()

    def init_hint(self) -> str:
        """What to add to an init failure's message: a bootstrap that runs `scf-asgi run` with
        no app reads the app from the handler setting, which only --handler gives here."""
        if self.bootstrap and not (self.handler or self.app):
            return (
                f"; the instance got no {ENV_HANDLER}: if the bootstrap runs `scf-asgi run` "
                "without an app, give the handler setting with --handler MODULE.ATTR"
            )
        return ""

    def environ(self, code_dir: str, api_port: int | None) -> dict[str, str]:
        """The environment the platform gives an instance, over this process's own."""
        env = dict(os.environ)
        for name in list(env):
            platform_variable = name.startswith(("SCF_", "TENCENTCLOUD_")) or name == ENV_HANDLER
            if platform_variable and not name.startswith("SCF_ASGI_"):
                del env[name]  # the developer's shell is not the platform
        env.update(
            {
                ENV_FUNCTION_NAME: self.function_name,
                ENV_FUNCTION_VERSION: LATEST_VERSION,
                ENV_NAMESPACE: "default",
                ENV_RUNTIME: CUSTOM_RUNTIME,
                ENV_REGION: self.region,
                ENV_APPID: "1250000000",
                ENV_UIN: "100000000001",
                ENV_RUNENV: "SCF",
                ENV_USER_CODE_ROOT: os.path.join(code_dir, ""),
                **PLACEHOLDER_CREDENTIALS,
            }
        )
        if api_port is not None:
            env[ENV_RUNTIME_API] = LOOPBACK
            env[ENV_RUNTIME_API_PORT] = str(api_port)
        if self.web:
            # Only the front door is to be reachable: its limits and request ids apply.
            env[ENV_WEB_HOST] = LOOPBACK
        handler = self.handler or self.app
        if handler:
            env[ENV_HANDLER] = handler
        env.update(self.environment)
        env.setdefault("PYTHONUNBUFFERED", "1")  # so the instance's prints show up at once
        if self.read_only:
            env[ENV_READ_ONLY] = code_dir
            path = env.get("PYTHONPATH")
            env["PYTHONPATH"] = SITE_DIR + (os.pathsep + path if path else "")
        return env
