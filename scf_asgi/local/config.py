"""`LocalConfig`: the settings of one `scf-asgi local` run, checked once, and what follows from
them (the instance's command line, working directory and environment). Standard library only:
the command module reads it without the [local] extra installed."""

from __future__ import annotations

import os
import sys

from ..errors import ConfigurationError
from ..platform import (
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
)

__all__ = ["ENV_READ_ONLY", "PLACEHOLDER_CREDENTIALS", "TRIGGERS", "LocalConfig"]

# The HTTP entry points `scf-asgi local --trigger` can play.
TRIGGERS = ("apigw", "function-url")

# The emulator's own setting for an instance: directories its Python code may not write to
# (read by the sitecustomize module in instance_site/, which PYTHONPATH puts first).
ENV_READ_ONLY = "SCF_ASGI_LOCAL_READ_ONLY"
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance_site")
# The role credentials an instance finds in its environment: placeholders, never the
# developer's own (a TENCENTCLOUD_SECRETID in the shell does not reach the function).
PLACEHOLDER_CREDENTIALS = {
    ENV_SECRET_ID: "AKIDLOCALPLACEHOLDER",
    ENV_SECRET_KEY: "local-placeholder-secret-key",
    ENV_SESSION_TOKEN: "local-placeholder-session-token",
}


class LocalConfig:
    """The options of `scf-asgi local` (see the command's help for each). A plain class, not a
    dataclass: `scf-asgi run` builds every command's parser, and dataclasses costs a cold start
    10 ms of imports."""

    def __init__(
        self,
        *,
        app: str | None = None,
        handler: str | None = None,
        host: str = "127.0.0.1",
        port: int = 8000,
        stage: str = "release",
        trigger: str = "apigw",
        bootstrap: str | None = None,
        web: bool = False,
        instances: int = 1,
        timeout_ms: int = 3000,
        memory_mb: int = 128,
        init_timeout_ms: int = DEFAULT_INIT_TIMEOUT_MS,
        host_header: str | None = None,
        function_name: str = "scf-asgi-local",
        region: str = "ap-guangzhou",
        environment: dict[str, str] | None = None,
        reload: bool = False,
        read_only: bool = True,
        inspector_path: str | None = "/_scf",
        history: int = 100,
        access_log: bool = True,
        run_args: list[str] | None = None,
    ) -> None:
        self.app = app
        self.handler = handler  # the _HANDLER setting; app when None
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
        self.environment: dict[str, str] = dict(environment or {})  # the function's variables
        self.reload = reload
        self.read_only = read_only
        self.inspector_path = inspector_path
        self.history = history
        self.access_log = access_log
        self.run_args: list[str] = list(run_args or [])  # passed on to `scf-asgi run`

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
                ENV_FUNCTION_VERSION: "$LATEST",
                ENV_NAMESPACE: "default",
                ENV_RUNTIME: "CustomRuntime",
                ENV_REGION: self.region,
                ENV_APPID: "1250000000",
                ENV_UIN: "100000000001",
                ENV_RUNENV: "SCF",
                ENV_USER_CODE_ROOT: os.path.join(code_dir, ""),
                **PLACEHOLDER_CREDENTIALS,
            }
        )
        if api_port is not None:
            env[ENV_RUNTIME_API] = "127.0.0.1"
            env[ENV_RUNTIME_API_PORT] = str(api_port)
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
