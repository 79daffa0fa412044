"""A fake of the Tencent Cloud control plane for SCF (API version 2018-04-16) and of COS, on
loopback: the platform's APIs, so a fake is the right test double for `scf-asgi deploy`.

- Every request's TC3-HMAC-SHA256 signature is checked with this module's own code, written
  from the public description of the algorithm (canonical request -> string to sign -> keys
  derived from ``"TC3" + SecretKey`` by date, service and ``tc3_request``), not the SDK's. A
  wrong key, an unknown id, a stale timestamp or a scope that does not match gets the
  platform's AuthFailure codes.
- Functions keep state: CreateFunction -> ``Creating``, UpdateFunctionCode/Configuration ->
  ``Updating``, PublishVersion -> ``Publishing``, each ``Active`` after `polls_until_active`
  GetFunction calls (never, with `stuck`); a code package without the bootstrap its type needs
  ends ``CreateFailed``/``UpdateFailed`` with a reason, as the platform reports it. Calls on a
  function that is not Active are refused.
- InvokeFunction really runs the uploaded zip: it unzips it into an empty folder and starts its
  ``bootstrap`` with `python` as ``SCF_PYTHON`` (the platform's interpreter: a bare venv)
  against the emulated Custom Runtime API (tests/runtime_api.py), and answers with the result
  and the tail of the log.
- COS: a single PUT of an object, kept for CreateFunction's ``CosBucketName``/``CosObjectName``
  (the request must carry a COS signature naming a known SecretId; its HMAC is not checked).
  As the SDK's models describe them, the bucket is named without its -APPID and the object
  with a leading /: the other forms are refused.
- A Handler outside the documented form ("file.function", each part 2-60 letters, digits, _ or
  -, starting and ending with a letter) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import re
import tempfile
import threading
import time
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from scf_asgi.platform import LATEST_VERSION, MAX_INLINE_ZIP_BYTES
from tests.packages import bare_env, extract
from tests.runtime_api import FakeRuntimeAPI, RuntimeProcess, runtime_env

SERVICE = "scf"
VERSION = "2018-04-16"
LOG_TAIL_BYTES = 4 * 1024
MAX_CLOCK_SKEW_SECONDS = 300
HANDLER = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z]\.[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z]")


class APIError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    payload: bytes,
    timestamp: str,
    date: str,
    service: str,
) -> str:
    """The TC3-HMAC-SHA256 signature of a request, computed from scratch."""
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            query,
            canonical_headers,
            ";".join(signed_headers),
            _sha256_hex(payload),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ["TC3-HMAC-SHA256", timestamp, scope, _sha256_hex(canonical_request.encode("utf-8"))]
    )
    key = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class Function:
    """One function: its configuration, its code, its status, its published versions."""

    def __init__(self, params: dict[str, Any], code: bytes) -> None:
        self.name = params["FunctionName"]
        self.namespace = params.get("Namespace", "default")
        self.type = params.get("Type", "Event")
        self.runtime = params.get("Runtime", "")
        self.handler = params.get("Handler", "")
        self.memory = params.get("MemorySize", 128)
        self.timeout = params.get("Timeout", 3)
        self.init_timeout = params.get("InitTimeout", 65)
        self.environment = params.get("Environment", {"Variables": []})
        self.concurrency = params.get("InstanceConcurrencyConfig")
        self.code = code
        self.status = "Creating"
        self.reasons: list[dict[str, str]] = []
        self.polls = 0
        self.versions: dict[str, dict[str, Any]] = {}

    def view(self, version: str = LATEST_VERSION) -> dict[str, Any]:
        return {
            "FunctionName": self.name,
            "Namespace": self.namespace,
            "Type": self.type,
            "Runtime": self.runtime,
            "Handler": self.handler,
            "MemorySize": self.memory,
            "Timeout": self.timeout,
            "InitTimeout": self.init_timeout,
            "Environment": self.environment,
            "Status": self.status,
            "StatusDesc": "",
            "StatusReasons": self.reasons,
            "Qualifier": version,
            "FunctionVersion": version,
            "CodeSize": len(self.code),
        }


class ControlPlane:
    """The fake, serving on 127.0.0.1 until `close()`."""

    def __init__(self, credentials: dict[str, str], python: Path) -> None:
        self.credentials = credentials  # SecretId -> SecretKey
        self.python = python  # the interpreter InvokeFunction's instances run on
        self.polls_until_active = 2
        self.stuck = False
        self.invoke_delay = 0.0  # seconds InvokeFunction takes before it starts the instance
        self.functions: dict[tuple[str, str], Function] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []  # accepted, signed calls
        self.refused: list[tuple[str, str]] = []  # (action, error code)
        # COS is served as a custom domain bound to this bucket: the requests' Host is the
        # fake's address, so it names no bucket.
        self.cos_bucket = "code-1250000000"
        self.appid = self.cos_bucket.rsplit("-", 1)[1]
        self.cos_objects: dict[tuple[str, str], bytes] = {}
        self.invocation_logs: list[str] = []
        self.lock = threading.Lock()
        plane = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                action = self.headers.get("X-TC-Action", "")
                request_id = str(uuid.uuid4())
                try:
                    plane.authenticate(self.command, self.path, dict(self.headers), payload)
                    params = json.loads(payload or b"{}")
                    with plane.lock:
                        plane.calls.append((action, params))
                    result = plane.dispatch(action, params)
                except APIError as exc:
                    with plane.lock:
                        plane.refused.append((action, exc.code))
                    result = {"Error": {"Code": exc.code, "Message": exc.message}}
                result["RequestId"] = request_id
                body = json.dumps({"Response": result}).encode()
                self._reply(200, body, "application/json")

            def do_PUT(self) -> None:  # COS: PutObject
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                authorization = self.headers.get("Authorization", "")
                fields = dict(
                    part.split("=", 1) for part in authorization.split("&") if "=" in part
                )
                if (
                    fields.get("q-sign-algorithm") != "sha1"
                    or fields.get("q-ak") not in plane.credentials
                ):
                    self._reply(403, b"<Error><Code>AccessDenied</Code></Error>", "text/xml")
                    return
                bucket = plane.cos_bucket
                key = self.path.lstrip("/").split("?")[0]
                with plane.lock:
                    plane.cos_objects[bucket, key] = body
                self.send_response(200)
                self.send_header("ETag", '"' + hashlib.md5(body).hexdigest() + '"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def actions(self) -> list[str]:
        """The accepted calls' actions, consecutive GetFunction polls counted as one."""
        names: list[str] = []
        for action, _ in self.calls:
            if not (names and action == "GetFunction" == names[-1]):
                names.append(action)
        return names

    # -- the signature

    def authenticate(self, method: str, path: str, headers: dict[str, str], payload: bytes) -> None:
        headers = {name.lower(): value for name, value in headers.items()}
        authorization = headers.get("authorization", "")
        algorithm, _, rest = authorization.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            raise APIError("AuthFailure.SignatureFailure", "unsupported signature algorithm")
        fields = {}
        for part in rest.split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        secret_id, date, service, terminator = (fields.get("Credential", "").split("/") + [""] * 4)[
            :4
        ]
        if secret_id not in self.credentials:
            raise APIError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - time.time()) > MAX_CLOCK_SKEW_SECONDS:
            raise APIError("AuthFailure.SignatureExpire", "The signature expired.")
        expected_date = time.strftime("%Y-%m-%d", time.gmtime(int(timestamp)))
        if (date, service, terminator) != (expected_date, SERVICE, "tc3_request"):
            raise APIError("AuthFailure.SignatureFailure", "The credential scope is wrong.")
        signed = fields.get("SignedHeaders", "").split(";")
        if "host" not in signed or "content-type" not in signed:
            raise APIError("AuthFailure.SignatureFailure", "Host and Content-Type must be signed.")
        path_part, _, query = path.partition("?")
        expected = tc3_signature(
            self.credentials[secret_id],
            method=method,
            path=path_part,
            query=query,
            headers=headers,
            signed_headers=signed,
            payload=payload,
            timestamp=timestamp,
            date=date,
            service=service,
        )
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            raise APIError(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature "
                "is correct.",
            )
        if headers.get("x-tc-version") != VERSION:
            raise APIError("InvalidParameter", f"unknown version {headers.get('x-tc-version')}")
        if not headers.get("x-tc-region"):
            raise APIError("MissingParameter", "X-TC-Region is required")

    # -- the actions

    def dispatch(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "_" + action, None)
        if handler is None:
            raise APIError("InvalidAction", f"unknown action {action}")
        with self.lock:
            result: dict[str, Any] = handler(params)
        return result

    def _function(self, params: dict[str, Any]) -> Function:
        key = (params.get("Namespace", "default"), params.get("FunctionName", ""))
        if key not in self.functions:
            raise APIError("ResourceNotFound.Function", f"function {key[1]} does not exist")
        return self.functions[key]

    def _code(self, params: dict[str, Any]) -> bytes:
        code = params.get("Code", params)
        if code.get("ZipFile"):
            data = base64.b64decode(code["ZipFile"])
            if len(data) > MAX_INLINE_ZIP_BYTES:
                raise APIError("InvalidParameterValue.ZipFile", "ZipFile is over 20 MB")
            return data
        if code.get("CosBucketName"):
            bucket, name = code["CosBucketName"], code.get("CosObjectName", "")
            if bucket.endswith("-" + self.appid):
                raise APIError(
                    "InvalidParameterValue.CosBucketName",
                    "CosBucketName is the bucket's name without -appid",
                )
            if not name.startswith("/"):
                raise APIError(
                    "InvalidParameterValue.CosObjectName", "CosObjectName must start with /"
                )
            key = (f"{bucket}-{self.appid}", name[1:])
            if key not in self.cos_objects:
                raise APIError("ResourceNotFound.CosObject", f"no COS object {key}")
            return self.cos_objects[key]
        raise APIError("MissingParameter.Code", "Code is required")

    def _settle(self, function: Function, failed_status: str) -> None:
        """A Creating/Updating function after enough polls: Active, or failed if its code
        lacks the bootstrap its type starts."""
        function.polls += 1
        if self.stuck or function.polls <= self.polls_until_active:
            return
        needed = "scf_bootstrap" if function.type == "HTTP" else "bootstrap"
        try:
            with zipfile.ZipFile(io.BytesIO(function.code)) as opened:
                info = opened.getinfo(needed)
                executable = (info.external_attr >> 16) & 0o111
        except (KeyError, zipfile.BadZipFile):
            executable = 0
        if executable:
            function.status, function.reasons = "Active", []
        else:
            function.status = failed_status
            function.reasons = [
                {
                    "ErrorCode": "InvalidCode",
                    "ErrorMessage": f"the code package has no executable {needed} at its root",
                }
            ]

    def _GetFunction(self, params: dict[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        qualifier = params.get("Qualifier") or LATEST_VERSION
        if qualifier != LATEST_VERSION:
            if qualifier not in function.versions:
                raise APIError("ResourceNotFound.Version", f"no version {qualifier}")
            version = function.versions[qualifier]
            version["polls"] += 1
            if version["polls"] > self.polls_until_active and not self.stuck:
                version["view"]["Status"] = "Active"
            return dict(version["view"])
        if function.status in ("Creating", "Updating"):
            failed = "CreateFailed" if function.status == "Creating" else "UpdateFailed"
            self._settle(function, failed)
        return function.view()

    def _check_handler(self, params: dict[str, Any]) -> None:
        handler = params.get("Handler")
        if handler is not None and not HANDLER.fullmatch(handler):
            raise APIError("InvalidParameterValue.Handler", f"Handler {handler!r} is invalid")

    def _CreateFunction(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_handler(params)
        key = (params.get("Namespace", "default"), params["FunctionName"])
        if key in self.functions:
            raise APIError("ResourceInUse.Function", "the function exists")
        self.functions[key] = Function(params, self._code(params))
        return {}

    def _active(self, function: Function) -> None:
        if function.status != "Active":
            raise APIError(
                "FailedOperation.FunctionStatusError", f"the function is {function.status}"
            )

    def _UpdateFunctionCode(self, params: dict[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        self._active(function)
        self._check_handler(params)
        function.code = self._code(params)
        function.handler = params.get("Handler", function.handler)
        function.status, function.polls = "Updating", 0
        return {}

    def _UpdateFunctionConfiguration(self, params: dict[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        self._active(function)
        function.memory = params.get("MemorySize", function.memory)
        function.timeout = params.get("Timeout", function.timeout)
        function.init_timeout = params.get("InitTimeout", function.init_timeout)
        function.environment = params.get("Environment", function.environment)
        function.status, function.polls = "Updating", 0
        return {}

    def _PublishVersion(self, params: dict[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        self._active(function)
        number = str(len(function.versions) + 1)
        view = function.view(number)
        view["Status"] = "Publishing"
        function.versions[number] = {"view": view, "code": function.code, "polls": 0}
        return {"FunctionVersion": number, "FunctionName": function.name}

    def _InvokeFunction(self, params: dict[str, Any]) -> dict[str, Any]:
        function = self._function(params)
        qualifier = params.get("Qualifier") or LATEST_VERSION
        code = function.code
        if qualifier != LATEST_VERSION:
            code = function.versions[qualifier]["code"]
        self._active(function)
        if function.type != "Event":
            raise APIError("UnsupportedOperation", "invoke a web function over HTTP")
        event = json.loads(params.get("Event") or "{}")
        # The instance runs outside the lock: a slow start must not block other calls.
        self.lock.release()
        try:
            time.sleep(self.invoke_delay)
            return self._run(function, qualifier, code, event)
        finally:
            self.lock.acquire()

    def _run(self, function: Function, qualifier: str, code: bytes, event: Any) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="fake-scf-") as folder:
            archive = Path(folder) / "code.zip"
            archive.write_bytes(code)
            unpacked = Path(folder) / "var-user"
            extract(archive, unpacked)
            api = FakeRuntimeAPI()
            variables = {
                item["Key"]: item["Value"] for item in function.environment.get("Variables", [])
            }
            env = bare_env(
                runtime_env(api),
                self.python,
                SCF_FUNCTIONNAME=function.name,
                SCF_FUNCTIONVERSION=qualifier,
                SCF_NAMESPACE=function.namespace,
                _HANDLER=function.handler,
                **variables,
            )
            started = time.monotonic()
            try:
                instance = RuntimeProcess(
                    api, [], env=env, cwd=unpacked, command=[str(unpacked / "bootstrap")]
                )
            except RuntimeError as exc:
                api.close()
                return {
                    "Result": {
                        "FunctionRequestId": "",
                        "InvokeResult": -1,
                        "RetMsg": "",
                        "ErrMsg": f"the instance did not start: {exc}",
                        "Log": str(exc)[-LOG_TAIL_BYTES:],
                        "Duration": 0.0,
                        "BillDuration": 0,
                        "MemUsage": 0,
                    }
                }
            try:
                answer = api.invoke(event, time_limit_ms=function.timeout * 1000)
            finally:
                instance.stop()
                api.close()
            duration = (time.monotonic() - started) * 1000
            log = instance.output.encode()[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
            self.invocation_logs.append(instance.output)
            ok = answer.kind == "response"
            return {
                "Result": {
                    "FunctionRequestId": answer.request_id,
                    "InvokeResult": 0 if ok else 1,
                    "RetMsg": answer.body.decode() if ok else "",
                    "ErrMsg": "" if ok else answer.body.decode(),
                    "Log": log,
                    "Duration": round(duration, 2),
                    "BillDuration": int(duration) + 1,
                    "MemUsage": 0,
                }
            }


def environ_without_credentials(home: Path) -> dict[str, str]:
    """This process's environment with no Tencent Cloud credentials and HOME at `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENCENTCLOUD_")}
    env["HOME"] = str(home)
    return env
