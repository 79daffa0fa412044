"""``scf-asgi deploy``: from an app folder to a running function, through the Tencent Cloud API.

    scf-asgi deploy [MODULE:ATTR] --function NAME --region REGION [--web] [--publish] ...

1. reads the plan from the flags and ``[tool.scf-asgi]`` (the region, the function, ...) and
   finds credentials in the SDK's usual places (never printed, never packaged):
   ``TENCENTCLOUD_SECRET_ID`` / ``TENCENTCLOUD_SECRET_KEY``, tccli's credential file
   (``~/.tccli/default.credential``), the SDK's profile file (``~/.tencentcloud/credentials``),
   and with ``--cvm-role`` the role of the CVM it runs on (none with ``--dry-run``), so that
   neither is found missing after a long build;
2. builds the package (`scf_asgi.packaging`), unless ``--zip`` names one;
3. creates the function (``CreateFunction``: ``Runtime: CustomRuntime``, ``Type: Event``, or
   ``HTTP`` for a web function) or updates its code and configuration (``--env`` variables
   added to the function's own), waiting after each call until ``GetFunction`` says
   ``Active``;
4. optionally publishes a version (``PublishVersion``);
5. smoke-tests an event function with ``InvokeFunction`` (an API gateway event for ``GET /``,
   ``LogType=Tail``), waiting as long as the function may take, and prints the status and the
   log tail; an error or a 5xx answer fails the deploy.

A package over 20 MB cannot go inline with the API call: it is uploaded to COS
(``--cos-bucket``, with cos-python-sdk-v5) and the function created from there.

Calls go through the official SDK (``tencentcloud-sdk-python-scf``, extra ``scf-asgi[deploy]``),
which signs them with TC3-HMAC-SHA256. ``--endpoint`` points them elsewhere (a private cloud, the
tests' fake control plane); ``--dry-run`` shows them without making any.
"""

from __future__ import annotations

import re

from .errors import ConfigurationError, DeployError
from .platform import CUSTOM_RUNTIME, DEFAULT_INIT_TIMEOUT_MS, LATEST_VERSION, MAX_INLINE_ZIP_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from pathlib import Path
    from typing import Any

    from .packaging.progress import Reporter

__all__ = [
    "FALLBACK_HANDLER",
    "SCF_API_VERSION",
    "CloudAPI",
    "add_parsers",
    "app_handler",
    "deploy_command",
    "find_credential",
]

SCF_API_VERSION = "2018-04-16"
# tccli's files (its credential and its default region); the paths are expanded when read.
TCCLI_CREDENTIAL = "~/.tccli/default.credential"
TCCLI_CONFIGURE = "~/.tccli/default.configure"
_DEFAULT_NAMESPACE = "default"
_ACTIVE = "Active"
_FAILED = ("CreateFailed", "UpdateFailed", "PublishFailed", "DeleteFailed")
# The Handler the API takes: "file.function", each part 2-60 letters, digits, _ or -, starting
# and ending with a letter (CreateFunction's documentation). A Custom Runtime's bootstrap names
# the app itself, so an app reference outside that form gets the platform's own example value.
_HANDLER_PART = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z]")
FALLBACK_HANDLER = "index.main_handler"
# The longest execution timeout the platform allows, in seconds (section 1 of the spec).
_LONGEST_TIMEOUT = 900
# What InvokeFunction may take beyond the function's timeout and init timeout: the platform's
# own work (placing the instance, fetching the code) before and after.
_INVOKE_MARGIN = 30
# With --dry-run, said of UpdateFunctionConfiguration's Environment: the function's variables
# are not read, and the real call sends them with those given laid over them.
_MERGED_NOTE = (
    "Environment: merged over the function's existing variables, which are kept; "
    "those given are added or replace the ones of the same name"
)
# A COS bucket's full name: its own name, then -APPID.
_BUCKET = re.compile(r"(?P<name>[a-z0-9][a-z0-9-]*)-(?P<appid>[0-9]+)")


def add_parsers(commands: Any) -> None:
    import argparse

    from .packaging.commands import add_package_arguments

    deploy = commands.add_parser(
        "deploy",
        help="package an app and create or update its SCF function (Tencent Cloud API)",
        description=(
            "Build the package (or take --zip), create or update the function through the "
            "Tencent Cloud API, wait until it is Active, optionally publish a version, and "
            "smoke-test it with InvokeFunction. Needs scf-asgi[deploy]."
        ),
    )
    add_package_arguments(deploy)
    function = deploy.add_argument_group("the function")
    function.add_argument(
        "--function", metavar="NAME", help="its name (default: the source folder's name)"
    )
    function.add_argument("--region", help="e.g. ap-guangzhou (default: tccli's configured one)")
    function.add_argument("--namespace", help=f"({_DEFAULT_NAMESPACE})")
    function.add_argument("--memory", type=int, metavar="MB", help="memory size in MB")
    function.add_argument("--timeout", type=int, metavar="S", help="execution timeout, seconds")
    function.add_argument(
        "--init-timeout", type=int, metavar="S", help="time to start (post ready), seconds"
    )
    function.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="an environment variable (repeatable; added to those of [tool.scf-asgi])",
    )
    function.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="web functions: requests one instance serves at once (InstanceConcurrencyConfig)",
    )
    function.add_argument("--description", help="the function's description")
    steps = deploy.add_argument_group("what deploy does")
    steps.add_argument("--zip", metavar="FILE.zip", help="deploy this package, build none")
    steps.add_argument(
        "--publish",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="publish a version afterwards",
    )
    steps.add_argument(
        "--no-smoke-test",
        dest="smoke_test",
        action="store_false",
        help="skip the InvokeFunction check",
    )
    steps.add_argument(
        "--wait-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="how long to wait for Active (300)",
    )
    steps.add_argument(
        "--cos-bucket",
        metavar="NAME-APPID",
        help=f"upload packages over {MAX_INLINE_ZIP_BYTES // (1024 * 1024)} MB through this "
        "COS bucket (in the function's region)",
    )
    steps.add_argument("--dry-run", action="store_true", help="show the calls, make none")
    api = deploy.add_argument_group("the API")
    api.add_argument(
        "--endpoint",
        metavar="URL",
        help="the SCF API endpoint (default: scf.tencentcloudapi.com)",
    )
    api.add_argument(
        "--cos-endpoint",
        metavar="URL",
        help="upload through this domain of the bucket (default: the region's COS domain)",
    )
    api.add_argument(
        "--cvm-role",
        action="store_true",
        help="also look for credentials in the role of this CVM (asks its metadata service)",
    )
    deploy.set_defaults(command_main=deploy_command)


# -- credentials ---------------------------------------------------------------------------


def _sdk(module: str) -> Any:
    from .packaging.progress import require

    return require(module, "deploy")


def find_credential(*, cvm_role: bool = False) -> tuple[Any, str]:
    """The credential to sign with and where it came from (never the secret itself)."""
    import json
    from pathlib import Path

    credential = _sdk("tencentcloud.common.credential")
    found = credential.EnvironmentVariableCredential().get_credential()
    if found is not None:
        return found, "the environment (TENCENTCLOUD_SECRET_ID)"
    tccli = Path(TCCLI_CREDENTIAL).expanduser()
    if tccli.is_file():
        try:
            data = json.loads(tccli.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DeployError(f"cannot read tccli's credential file {tccli}: {exc}") from None
        if data.get("secretId") and data.get("secretKey"):
            found = credential.Credential(data["secretId"], data["secretKey"], data.get("token"))
            return found, f"tccli's credential file ({tccli})"
    found = credential.ProfileCredential().get_credential()
    if found is not None:
        return found, "the SDK's credential file (~/.tencentcloud/credentials)"
    if cvm_role:
        role = credential.CVMRoleCredential()
        if role.get_credential() is not None:
            return role, "the CVM's role"
    raise DeployError(
        "no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, "
        "or run `tccli configure`" + ("" if cvm_role else ", or pass --cvm-role on a CVM")
    )


def _tccli_region() -> str | None:
    import json
    from pathlib import Path

    path = Path(TCCLI_CONFIGURE).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    region = data.get("_sys_param", {}).get("region") if isinstance(data, dict) else None
    return region if isinstance(region, str) and region else None


# -- the API -------------------------------------------------------------------------------


class CloudAPI:
    """The SCF API through the official SDK: `call(action, params) -> the Response dict`."""

    def __init__(self, credential: Any, region: str, endpoint: str | None) -> None:
        from urllib.parse import urlsplit

        self.models = _sdk("tencentcloud.scf.v20180416.models")
        self.sdk_error = _sdk(
            "tencentcloud.common.exception.tencent_cloud_sdk_exception"
        ).TencentCloudSDKException
        self.credential = credential
        self.region = region
        self.endpoint: tuple[str, str] | None = None
        if endpoint:
            parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError(f"--endpoint {endpoint!r}: expected http(s)://HOST[:PORT]")
            self.endpoint = (parts.scheme, parts.netloc)
        self.clients: dict[int | None, Any] = {}

    def client(self, timeout: int | None) -> Any:
        """The SDK's client, whose requests wait `timeout` seconds (None: the SDK's 60)."""
        if timeout not in self.clients:
            http_profile = _sdk("tencentcloud.common.profile.http_profile")
            client_profile = _sdk("tencentcloud.common.profile.client_profile")
            scf_client = _sdk("tencentcloud.scf.v20180416.scf_client")
            http = http_profile.HttpProfile(reqTimeout=timeout)
            if self.endpoint:
                http.protocol = http.scheme = self.endpoint[0]
                http.endpoint = self.endpoint[1]
            profile = client_profile.ClientProfile(httpProfile=http)
            self.clients[timeout] = scf_client.ScfClient(self.credential, self.region, profile)
        return self.clients[timeout]

    def call(
        self, action: str, params: dict[str, Any], *, timeout: int | None = None
    ) -> dict[str, Any]:
        """The call's Response; a DeployError naming the platform's error code if refused."""
        found = self.call_if_found(action, params, missing_ok=False, timeout=timeout)
        assert found is not None
        return found

    def call_if_found(
        self,
        action: str,
        params: dict[str, Any],
        *,
        missing_ok: bool = True,
        timeout: int | None = None,
    ) -> dict[str, Any] | None:
        """As `call`, but None when the API says the resource does not exist."""
        import json

        request = getattr(self.models, action + "Request")()
        request.from_json_string(json.dumps(params))
        try:
            response = getattr(self.client(timeout), action)(request)
        except self.sdk_error as exc:
            code = exc.get_code() or "ClientError"
            if missing_ok and code.startswith("ResourceNotFound"):
                return None
            raise _api_error(action, code, exc) from None
        result: dict[str, Any] = json.loads(response.to_json_string())
        return result


def _api_error(action: str, code: str, exc: Any) -> DeployError:
    message = exc.get_message()
    request_id = exc.get_request_id()
    where = f" (request id {request_id})" if request_id else ""
    if code.startswith("AuthFailure"):
        return DeployError(
            f"Tencent Cloud refused the credentials ({code}: {message}){where}: check "
            "TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY or the credential file"
        )
    return DeployError(f"{action} failed: {code}: {message}{where}")


# -- the plan ------------------------------------------------------------------------------


def app_handler(app: str) -> str | None:
    """The app reference `app` (MODULE:ATTR) as a Handler, MODULE.ATTR, if the API takes it
    (then `scf-asgi run` with no argument finds the app in the instance's _HANDLER too)."""
    module, sep, attr = app.partition(":")
    if not sep:
        module, _, attr = app.rpartition(".")
    if _HANDLER_PART.fullmatch(module) and _HANDLER_PART.fullmatch(attr):
        return f"{module}.{attr}"
    return None


class Plan:
    """Everything one deploy does, from the flags and ``[tool.scf-asgi]``: read, and checked,
    before any package is built."""

    def __init__(self, config: Any) -> None:
        args = config.args
        source = config.source().resolve()
        self.function = str(config.get("function") or source.name)
        region = config.get("region") or _tccli_region()
        if not region:
            raise ConfigurationError(
                "no region: pass --region (e.g. ap-guangzhou) or set region in [tool.scf-asgi]"
            )
        self.region = str(region)
        self.namespace = str(config.get("namespace") or _DEFAULT_NAMESPACE)
        self.web = bool(config.get("web", False))
        self.memory = config.get("memory")
        self.timeout = config.get("timeout")
        self.init_timeout = config.get("init_timeout")
        self.description = config.get("description")
        self.concurrency = getattr(args, "concurrency", None)
        if self.concurrency is not None and not self.web:
            raise ConfigurationError("--concurrency is for web functions (--web)")
        environment = dict(config.settings.get("env", {}))
        for item in getattr(args, "env", None) or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigurationError(f"--env {item!r}: expected KEY=VALUE")
            environment[key] = value
        self.environment = environment
        self.publish = bool(config.get("publish", False))
        self.smoke_test = args.smoke_test
        self.cos_bucket = config.get("cos_bucket")
        if self.cos_bucket is not None and not _BUCKET.fullmatch(self.cos_bucket):
            raise ConfigurationError(
                f"--cos-bucket {self.cos_bucket!r}: expected the bucket's full name, NAME-APPID "
                "(e.g. code-1250000000)"
            )
        self.app = config.app()
        self.handler = app_handler(self.app) or FALLBACK_HANDLER

    def code(self, zip_path: Path, cos_object: str | None) -> dict[str, Any]:
        """The code of the function, as the API's Code names it: the zip inline, or the COS
        object `cos_object` (its key) of the bucket, named without its -APPID and the object
        with a leading / (as the SDK's models say)."""
        import base64

        if cos_object is not None:
            bucket = _BUCKET.fullmatch(self.cos_bucket or "")
            assert bucket is not None
            return {
                "CosBucketName": bucket.group("name"),
                "CosObjectName": "/" + cos_object,
                "CosBucketRegion": self.region,
            }
        return {"ZipFile": base64.b64encode(zip_path.read_bytes()).decode("ascii")}

    def configuration(self, variables: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The settings given, as the API names them (those not given are left as they are).
        The environment is the function's `variables`, if it has some, with those given laid
        over them: the API replaces the whole set, and variables set elsewhere (the console)
        are kept."""
        params: dict[str, Any] = {}
        if self.memory is not None:
            params["MemorySize"] = self.memory
        if self.timeout is not None:
            params["Timeout"] = self.timeout
        if self.init_timeout is not None:
            params["InitTimeout"] = self.init_timeout
        if self.description is not None:
            params["Description"] = self.description
        if self.environment:
            merged = {item["Key"]: item["Value"] for item in variables or []}
            merged.update(self.environment)
            params["Environment"] = {
                "Variables": [{"Key": k, "Value": v} for k, v in sorted(merged.items())]
            }
        if self.concurrency is not None:
            params["InstanceConcurrencyConfig"] = {
                "DynamicEnabled": "FALSE",
                "MaxConcurrency": self.concurrency,
            }
        return params

    def create_params(self, zip_path: Path, cos_object: str | None) -> dict[str, Any]:
        return {
            "FunctionName": self.function,
            "Namespace": self.namespace,
            "Runtime": CUSTOM_RUNTIME,
            "Type": "HTTP" if self.web else "Event",
            "Handler": self.handler,
            "Code": self.code(zip_path, cos_object),
            **self.configuration(),
        }

    def update_code_params(self, zip_path: Path, cos_object: str | None) -> dict[str, Any]:
        params = {"FunctionName": self.function, "Namespace": self.namespace}
        params.update(self.code(zip_path, cos_object))
        params["Handler"] = self.handler
        return params


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    """`params` for the user's eyes: the zip as its size, environment values hidden (they may
    be secrets)."""
    import base64
    import json

    shown = json.loads(json.dumps(params))
    code = shown.get("Code", shown)
    if "ZipFile" in code:
        size = len(base64.b64decode(code["ZipFile"]))
        code["ZipFile"] = f"<the package, {size} bytes, base64>"
    for variable in shown.get("Environment", {}).get("Variables", []):
        variable["Value"] = "***"
    return dict(shown)


def smoke_event() -> dict[str, Any]:
    """An API gateway event for ``GET /``, shaped like the captured ones."""
    return {
        "headerParameters": {},
        "headers": {"accept": "*/*", "host": "scf-asgi-deploy.invalid", "user-agent": "scf-asgi"},
        "httpMethod": "GET",
        "path": "/",
        "pathParameters": {},
        "queryString": {},
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/",
            "serviceId": "scf-asgi-deploy",
            "sourceIp": "127.0.0.1",
            "stage": "release",
        },
    }


# -- the steps -----------------------------------------------------------------------------


def _get_function(api: CloudAPI, plan: Plan, qualifier: str | None = None) -> dict[str, Any] | None:
    params = {"FunctionName": plan.function, "Namespace": plan.namespace}
    if qualifier:
        params["Qualifier"] = qualifier
    return api.call_if_found("GetFunction", params)


def _wait_active(
    api: CloudAPI, plan: Plan, timeout: float, reporter: Reporter, qualifier: str | None = None
) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    pause = 0.2
    with reporter.step("waiting for Active") as step:
        while True:
            function = _get_function(api, plan, qualifier)
            if function is None:
                raise DeployError(f"function {plan.function} disappeared while deploying")
            status = function.get("Status", "")
            step.update(status)
            if status == _ACTIVE:
                step.result = _ACTIVE
                return function
            if status in _FAILED:
                reasons = "; ".join(
                    f"{reason.get('ErrorCode', '')}: {reason.get('ErrorMessage', '')}"
                    for reason in function.get("StatusReasons") or []
                )
                detail = reasons or function.get("StatusDesc") or "no reason given"
                raise DeployError(f"function {plan.function} is {status}: {detail}")
            if time.monotonic() + pause > deadline:
                raise DeployError(
                    f"function {plan.function} was still {status or 'not Active'} after "
                    f"{timeout:g} s (--wait-timeout)"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)


def _upload_to_cos(
    plan: Plan, zip_path: Path, credential: Any, endpoint: str | None, reporter: Reporter
) -> str:
    """Upload the package to the plan's COS bucket; its object's key."""
    import hashlib
    from urllib.parse import urlsplit

    cos = _sdk("qcloud_cos")
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    key = f"scf-asgi/{plan.function}/{digest}.zip"
    settings: dict[str, Any] = {"Region": plan.region}
    if hasattr(credential, "get_credential_info"):
        secret_id, secret_key, token = credential.get_credential_info()
    else:
        secret_id, secret_key, token = credential.secretId, credential.secretKey, None
    settings.update(SecretId=secret_id, SecretKey=secret_key, Token=token)
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else "https://" + endpoint)
        settings.update(Domain=parts.netloc, Scheme=parts.scheme)
    client = cos.CosS3Client(cos.CosConfig(**settings))
    with reporter.step(f"uploading to COS bucket {plan.cos_bucket}") as step:
        try:
            with zip_path.open("rb") as body:
                client.put_object(Bucket=plan.cos_bucket, Body=body, Key=key)
        except (cos.CosServiceError, cos.CosClientError) as exc:
            raise DeployError(f"upload to COS bucket {plan.cos_bucket} failed: {exc}") from None
        step.result = key
    return key


def deploy(
    plan: Plan,
    zip_path: Path,
    api: CloudAPI,
    credential: Any,
    args: argparse.Namespace,
    reporter: Reporter,
) -> dict[str, Any]:
    """Create or update the function, wait, publish, smoke-test; the summary."""
    size = zip_path.stat().st_size
    cos_object = None
    if size > MAX_INLINE_ZIP_BYTES:
        if not plan.cos_bucket:
            raise DeployError(
                f"the package is {size / (1024 * 1024):.1f} MB: the API takes at most "
                f"{MAX_INLINE_ZIP_BYTES // (1024 * 1024)} MB inline; pass --cos-bucket "
                "NAME-APPID (a COS bucket in the function's region) to upload it there"
            )
        cos_object = _upload_to_cos(plan, zip_path, credential, args.cos_endpoint, reporter)
    if app_handler(plan.app) is None:
        reporter.note(
            f"{plan.app} is not a Handler the API takes (file.function, each 2-60 letters, "
            f"digits, _ or -, starting and ending with a letter): the function's Handler is "
            f"{FALLBACK_HANDLER}, the platform's example; the bootstrap names the app itself"
        )
    existing = _get_function(api, plan)
    summary: dict[str, Any] = {
        "function": plan.function,
        "region": plan.region,
        "namespace": plan.namespace,
        "type": "HTTP" if plan.web else "Event",
    }
    if existing is None:
        with reporter.step(f"creating {plan.function}") as step:
            api.call("CreateFunction", plan.create_params(zip_path, cos_object))
            step.result = "CreateFunction accepted"
        summary["created"] = True
        function = _wait_active(api, plan, args.wait_timeout, reporter)
    else:
        kind = existing.get("Type") or "Event"
        wanted = "HTTP" if plan.web else "Event"
        if kind != wanted:
            raise DeployError(
                f"function {plan.function} exists with Type {kind}; this deploy is Type "
                f"{wanted} ({'--web' if plan.web else 'no --web'}), and a function's type "
                "cannot change: choose another --function name"
            )
        if existing.get("Runtime") != CUSTOM_RUNTIME:
            raise DeployError(
                f"function {plan.function} exists with Runtime {existing.get('Runtime')}, not "
                f"{CUSTOM_RUNTIME}: choose another --function name"
            )
        summary["created"] = False
        if existing.get("Status") != _ACTIVE:
            existing = _wait_active(api, plan, args.wait_timeout, reporter)
        with reporter.step(f"updating the code of {plan.function}") as step:
            api.call("UpdateFunctionCode", plan.update_code_params(zip_path, cos_object))
            step.result = "UpdateFunctionCode accepted"
        function = _wait_active(api, plan, args.wait_timeout, reporter)
        variables = (existing.get("Environment") or {}).get("Variables") or []
        configuration = plan.configuration(variables)
        if configuration:
            kept = sorted({item["Key"] for item in variables} - set(plan.environment))
            if plan.environment and kept:
                reporter.note(
                    f"environment: {', '.join(sorted(plan.environment))} set; the function's "
                    f"other variables kept: {', '.join(kept)}"
                )
            with reporter.step("updating its configuration") as step:
                api.call(
                    "UpdateFunctionConfiguration",
                    {"FunctionName": plan.function, "Namespace": plan.namespace, **configuration},
                )
                step.result = "UpdateFunctionConfiguration accepted"
            function = _wait_active(api, plan, args.wait_timeout, reporter)
    qualifier = LATEST_VERSION
    if plan.publish:
        with reporter.step("publishing a version") as step:
            published = api.call(
                "PublishVersion", {"FunctionName": plan.function, "Namespace": plan.namespace}
            )
            qualifier = str(published.get("FunctionVersion", ""))
            step.result = f"version {qualifier}"
        function = _wait_active(api, plan, args.wait_timeout, reporter, qualifier)
    summary["version"] = qualifier
    if not plan.smoke_test:
        summary["smoke_test"] = None
    elif plan.web:
        reporter.note(
            "smoke test skipped: a web function is reached over HTTP (its function URL or "
            "API gateway trigger), not with an InvokeFunction event"
        )
        summary["smoke_test"] = None
    else:
        summary["smoke_test"] = _smoke_test(api, plan, function, qualifier, reporter)
    reporter.say(
        f"Deployed {plan.function} ({summary['type']}, {qualifier}) in {plan.region}/"
        f"{plan.namespace}"
    )
    return summary


def _invoke_timeout(function: dict[str, Any]) -> int:
    """How long InvokeFunction may take, in seconds: the function's execution timeout and init
    timeout (a cold start), and the platform's margin."""
    timeout = function.get("Timeout") or _LONGEST_TIMEOUT
    init_timeout = function.get("InitTimeout") or DEFAULT_INIT_TIMEOUT_MS // 1000
    return int(timeout) + int(init_timeout) + _INVOKE_MARGIN


def _smoke_test(
    api: CloudAPI, plan: Plan, function: dict[str, Any], qualifier: str, reporter: Reporter
) -> dict[str, Any]:
    import json

    timeout = _invoke_timeout(function)
    with reporter.step("smoke test: InvokeFunction GET /") as step:
        try:
            result = api.call(
                "InvokeFunction",
                {
                    "FunctionName": plan.function,
                    "Namespace": plan.namespace,
                    "Qualifier": qualifier,
                    "Event": json.dumps(smoke_event()),
                    "LogType": "Tail",
                },
                timeout=timeout,
            ).get("Result", {})
        except DeployError as exc:
            raise DeployError(
                f"deployed, but the smoke test got no answer: {exc} (waited up to {timeout} s: "
                "the function's timeout and init timeout, and "
                f"{_INVOKE_MARGIN} s for the platform)"
            ) from None
        status = None
        answer = result.get("RetMsg", "")
        try:
            document = json.loads(answer)
            if isinstance(document, dict) and isinstance(document.get("statusCode"), int):
                status = document["statusCode"]
        except ValueError:
            document = None
        step.result = f"status {status}" if status is not None else "no HTTP answer"
    log = result.get("Log", "") or ""
    outcome = {
        "status": status,
        "request_id": result.get("FunctionRequestId"),
        "duration_ms": result.get("Duration"),
        "log": log,
    }
    if log:
        reporter.say("Log tail:\n" + "\n".join("  " + line for line in log.splitlines()))
    if result.get("InvokeResult", 0) != 0 or status is None:
        error = result.get("ErrMsg") or answer or "no answer"
        raise DeployError(f"deployed, but the smoke test failed: {error}")
    if status >= 500:
        where = (
            "the log tail is above"
            if not reporter.quiet
            else "its log ends:\n" + "\n".join("  " + line for line in log.splitlines()[-10:])
        )
        raise DeployError(f"deployed, but the smoke test failed: GET / answered {status} ({where})")
    return outcome


# -- the command ---------------------------------------------------------------------------


def deploy_command(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .packaging.build import build_package, dumps
    from .packaging.commands import ProjectConfig, resolve
    from .packaging.progress import Reporter

    _sdk("tencentcloud.scf.v20180416.scf_client")  # the extra, before any work
    reporter = Reporter(quiet=args.quiet, json_output=args.json)
    config = ProjectConfig(args)
    # Everything that can be found wrong without the API is, before a package is built.
    plan = Plan(config)
    if args.zip and not Path(args.zip).is_file():
        raise ConfigurationError(f"--zip {args.zip}: no such file")
    credential = None
    if not args.dry_run:
        credential, origin = find_credential(cvm_role=args.cvm_role)
        reporter.say(f"Credentials from {origin}")
    package_summary = None
    if args.zip:
        zip_path = Path(args.zip)
    else:
        spec, _ = resolve(config)
        package_summary = build_package(spec, reporter)
        zip_path = spec.output
    if args.dry_run:
        cos_object = (
            "scf-asgi/<function>/<sha256>.zip"
            if zip_path.stat().st_size > MAX_INLINE_ZIP_BYTES
            else None
        )
        calls: list[dict[str, Any]] = [
            {"action": "GetFunction", "params": {"FunctionName": plan.function}},
            {
                "if": "new",
                "action": "CreateFunction",
                "params": plan.create_params(zip_path, cos_object),
            },
            {
                "if": "exists",
                "action": "UpdateFunctionCode",
                "params": plan.update_code_params(zip_path, cos_object),
            },
        ]
        if plan.configuration():
            update: dict[str, Any] = {
                "if": "exists",
                "action": "UpdateFunctionConfiguration",
                "params": {"FunctionName": plan.function, **plan.configuration()},
            }
            if plan.environment:  # the real call sends the set `deploy` makes of them
                update["note"] = _MERGED_NOTE
            calls.append(update)
        if plan.publish:
            calls.append({"action": "PublishVersion", "params": {"FunctionName": plan.function}})
        if plan.smoke_test and not plan.web:
            calls.append(
                {"action": "InvokeFunction", "params": {"Event": "GET /", "LogType": "Tail"}}
            )
        shown = [dict(call, params=_shown(call["params"])) for call in calls]
        endpoint = args.endpoint or "https://scf.tencentcloudapi.com"
        if args.json:
            print(dumps({"dry_run": True, "endpoint": endpoint, "calls": shown}))
        else:
            reporter.say(f"Dry run: would call {endpoint} (region {plan.region}):")
            conditions = {"new": " (if the function is new)", "exists": " (if it exists)"}
            for call in shown:
                condition = conditions.get(call.get("if", ""), "")
                reporter.say(f"  {call['action']}{condition} {json.dumps(call['params'])}")
                if "note" in call:
                    reporter.say(f"    ({call['note']})")
        return 0
    api = CloudAPI(credential, plan.region, args.endpoint)
    summary = deploy(plan, zip_path, api, credential, args, reporter)
    summary["package"] = package_summary or {"zip": str(zip_path)}
    if args.json:
        print(dumps(summary))
    return 0
