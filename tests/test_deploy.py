"""`scf-asgi deploy` against a fake of the Tencent Cloud control plane (tests/control_plane.py)
that checks every signature, keeps function state and runs the uploaded zip on InvokeFunction.
The command runs as users run it: a child process, the official SDK, real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scf_asgi.deploy import FALLBACK_HANDLER, app_handler
from scf_asgi.platform import MAX_INLINE_ZIP_BYTES
from tests.control_plane import ControlPlane, environ_without_credentials
from tests.packages import bare_venv, scf_asgi
from tests.runtime_api import ROOT

SECRET_ID = "AKIDscfasgitest0000000000000000000"
SECRET_KEY = "scfasgitestsecretkey0000000000000"
REGION = "ap-guangzhou"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bare_venv(tmp_path_factory.mktemp("bare") / "venv")


@pytest.fixture
def plane(bare_python: Path) -> Iterator[ControlPlane]:
    control_plane = ControlPlane({SECRET_ID: SECRET_KEY}, bare_python)
    yield control_plane
    control_plane.close()


def credentials_env(
    home: Path, secret_id: str = SECRET_ID, key: str = SECRET_KEY
) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    env = environ_without_credentials(home)
    env.update(TENCENTCLOUD_SECRET_ID=secret_id, TENCENTCLOUD_SECRET_KEY=key)
    env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")
    return env


@pytest.fixture(scope="module")
def flask_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("flask-zip")
    source = folder / "flask_app"
    shutil.copytree(ROOT / "examples" / "flask_app", source)
    output = folder / "flask.zip"
    done = scf_asgi("package", "app:app", "-o", str(output), "-q", cwd=source)
    assert done.returncode == 0, done.stderr
    return output


def deploy(plane: ControlPlane, cwd: Path, *args: str, env: dict[str, str]) -> Any:
    return scf_asgi("deploy", *args, "--endpoint", plane.endpoint, cwd=cwd, env=env)


def test_deploy_from_a_folder_creates_publishes_and_smoke_tests(
    plane: ControlPlane, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "flask_app", project)
    (project / "pyproject.toml").write_text(
        "[tool.scf-asgi]\n"
        'app = "app:app"\n'
        f'region = "{REGION}"\n'
        "memory = 256\n"
        "timeout = 10\n"
        'env = { GREETING = "hello", DATABASE_PASSWORD = "s3cret" }\n'
        'exclude = ["*.md"]\n'
    )
    env = credentials_env(tmp_path / "home")
    done = deploy(plane, project, "--memory", "512", "--publish", "--json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert plane.actions() == [
        "GetFunction",
        "CreateFunction",
        "GetFunction",
        "PublishVersion",
        "GetFunction",
        "InvokeFunction",
    ]
    create = dict(plane.calls[1][1])
    code = base64.b64decode(create.pop("Code")["ZipFile"])
    assert create == {
        "FunctionName": "shop",
        "Namespace": "default",
        "Runtime": "CustomRuntime",
        "Type": "Event",
        "Handler": "app.app",
        "MemorySize": 512,  # the flag over the file's 256
        "Timeout": 10,
        "Environment": {
            "Variables": [
                {"Key": "DATABASE_PASSWORD", "Value": "s3cret"},
                {"Key": "GREETING", "Value": "hello"},
            ]
        },
    }
    package = summary.pop("package")
    assert package["zip"] == str(project / "dist" / "shop.zip")  # the default -o
    assert hashlib.sha256(code).hexdigest() == package["sha256"]
    smoke = summary.pop("smoke_test")
    assert summary == {
        "function": "shop",
        "region": REGION,
        "namespace": "default",
        "type": "Event",
        "created": True,
        "version": "1",
    }
    assert smoke["status"] == 200
    assert smoke["request_id"]
    # the log tail is the instance's own output: its access line for the smoke test's GET /
    assert f"{smoke['request_id']} GET / 200" in smoke["log"]
    assert smoke["log"] == plane.invocation_logs[-1][-4096:]
    # nothing secret in the output or the package
    assert SECRET_KEY not in done.stdout + done.stderr
    assert SECRET_ID not in done.stdout + done.stderr
    assert SECRET_KEY.encode() not in code and SECRET_ID.encode() not in code
    with zipfile.ZipFile(Path(package["zip"])) as opened:
        assert "pyproject.toml" in opened.namelist()


def test_the_human_output_says_each_step_and_the_log_tail(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    env = credentials_env(tmp_path / "home")
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--function",
        "demo",
        "--region",
        REGION,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [line.split(" (")[0] for line in done.stdout.splitlines() if line.endswith(" s)")]
    assert steps == [
        "creating demo: CreateFunction accepted",
        "waiting for Active: Active",
        "smoke test: InvokeFunction GET /: status 200",
    ]
    lines = done.stdout.splitlines()
    assert lines[0] == "Credentials from the environment (TENCENTCLOUD_SECRET_ID)"
    assert lines[-1] == f"Deployed demo (Event, $LATEST) in {REGION}/default"
    assert "Log tail:" in lines
    assert " GET / 200 " in done.stdout


def test_a_second_deploy_updates_code_then_configuration(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    env = credentials_env(tmp_path / "home")
    base = ["app:app", "--zip", str(flask_zip), "--function", "demo", "--region", REGION]
    first = deploy(plane, tmp_path, *base, "--no-smoke-test", env=env)
    assert first.returncode == 0, first.stderr
    plane.calls.clear()
    again = deploy(plane, tmp_path, *base, "--memory", "1024", "--env", "A=1", "--json", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert plane.actions() == [
        "GetFunction",
        "UpdateFunctionCode",
        "GetFunction",
        "UpdateFunctionConfiguration",
        "GetFunction",
        "InvokeFunction",
    ]
    configured = [
        params for action, params in plane.calls if action == "UpdateFunctionConfiguration"
    ]
    assert configured[0] == {
        "FunctionName": "demo",
        "Namespace": "default",
        "MemorySize": 1024,
        "Environment": {"Variables": [{"Key": "A", "Value": "1"}]},
    }
    function = plane.functions["default", "demo"]
    assert (function.memory, function.status, function.code) == (
        1024,
        "Active",
        flask_zip.read_bytes(),
    )
    summary = json.loads(again.stdout)
    assert (summary["created"], summary["smoke_test"]["status"]) == (False, 200)


def test_wrong_credentials_are_a_clear_error(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    args = ["app:app", "--zip", str(flask_zip), "--function", "demo", "--region", REGION]
    wrong_key = deploy(plane, tmp_path, *args, env=credentials_env(tmp_path / "h1", key="x" * 32))
    assert wrong_key.returncode == 1
    error = wrong_key.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "scf-asgi: error: Tencent Cloud refused the credentials (AuthFailure.SignatureFailure: "
        "The provided credentials could not be validated. Please check your signature is "
        "correct.) (request id "
    )
    assert error.endswith(
        "): check TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY or the credential file"
    )
    unknown = deploy(
        plane, tmp_path, *args, env=credentials_env(tmp_path / "h2", secret_id="AKIDnobody")
    )
    assert unknown.returncode == 1
    assert "(AuthFailure.SecretIdNotFound: The SecretId is not found.)" in unknown.stderr
    assert "x" * 32 not in wrong_key.stdout + wrong_key.stderr
    assert plane.refused == [
        ("GetFunction", "AuthFailure.SignatureFailure"),
        ("GetFunction", "AuthFailure.SecretIdNotFound"),
    ]
    assert plane.functions == {}


def test_no_credentials_anywhere(plane: ControlPlane, flask_zip: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--region",
        REGION,
        env=environ_without_credentials(home),
    )
    assert (done.returncode, done.stderr) == (
        1,
        "scf-asgi: error: no Tencent Cloud credentials: set TENCENTCLOUD_SECRET_ID and "
        "TENCENTCLOUD_SECRET_KEY, or run `tccli configure`, or pass --cvm-role on a CVM\n",
    )
    assert plane.calls == []


def test_tccli_credential_file_and_region(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".tccli").mkdir(parents=True)
    (home / ".tccli" / "default.credential").write_text(
        json.dumps({"secretId": SECRET_ID, "secretKey": SECRET_KEY})
    )
    (home / ".tccli" / "default.configure").write_text(
        json.dumps({"_sys_param": {"region": "ap-shanghai", "output": "json"}})
    )
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--function",
        "viatccli",
        "--no-smoke-test",
        env=environ_without_credentials(home),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"Credentials from tccli's credential file ({home}/.tccli/default.credential)"
    )
    assert (
        done.stdout.splitlines()[-1] == "Deployed viatccli (Event, $LATEST) in ap-shanghai/default"
    )


def test_a_failed_create_gives_the_platforms_reason(plane: ControlPlane, tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("app.py", "app = None\n")
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(broken),
        "--function",
        "broken",
        "--region",
        REGION,
        env=credentials_env(tmp_path / "home"),
    )
    assert done.returncode == 1
    assert done.stderr == (
        "scf-asgi: error: function broken is CreateFailed: InvalidCode: the code package has no "
        "executable bootstrap at its root\n"
    )
    assert plane.functions["default", "broken"].status == "CreateFailed"


def test_a_timeout_waiting_for_active(plane: ControlPlane, flask_zip: Path, tmp_path: Path) -> None:
    plane.stuck = True
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--function",
        "slow",
        "--region",
        REGION,
        "--wait-timeout",
        "1",
        env=credentials_env(tmp_path / "home"),
    )
    assert (done.returncode, done.stderr) == (
        1,
        "scf-asgi: error: function slow was still Creating after 1 s (--wait-timeout)\n",
    )
    assert "InvokeFunction" not in plane.actions()


def test_dry_run_calls_nothing_and_hides_values(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--function",
        "demo",
        "--region",
        REGION,
        "--env",
        "TOKEN=abc123",
        "--dry-run",
        "--json",
        # a dry run makes no call: it needs no credentials
        env=environ_without_credentials(home),
    )
    assert done.returncode == 0, done.stderr
    assert plane.calls == [] and plane.refused == []
    plan = json.loads(done.stdout)
    size = flask_zip.stat().st_size
    assert plan == {
        "dry_run": True,
        "endpoint": plane.endpoint,
        "calls": [
            {"action": "GetFunction", "params": {"FunctionName": "demo"}},
            {
                "if": "new",
                "action": "CreateFunction",
                "params": {
                    "FunctionName": "demo",
                    "Namespace": "default",
                    "Runtime": "CustomRuntime",
                    "Type": "Event",
                    "Handler": "app.app",
                    "Code": {"ZipFile": f"<the package, {size} bytes, base64>"},
                    "Environment": {"Variables": [{"Key": "TOKEN", "Value": "***"}]},
                },
            },
            {
                "if": "exists",
                "action": "UpdateFunctionCode",
                "params": {
                    "FunctionName": "demo",
                    "Namespace": "default",
                    "ZipFile": f"<the package, {size} bytes, base64>",
                    "Handler": "app.app",
                },
            },
            {
                "if": "exists",
                "action": "UpdateFunctionConfiguration",
                "params": {
                    "FunctionName": "demo",
                    "Environment": {"Variables": [{"Key": "TOKEN", "Value": "***"}]},
                },
                # the real call sends the function's own variables too (they are not read)
                "note": MERGED,
            },
            {"action": "InvokeFunction", "params": {"Event": "GET /", "LogType": "Tail"}},
        ],
    }
    assert "abc123" not in done.stdout + done.stderr


MERGED = (
    "Environment: merged over the function's existing variables, which are kept; "
    "those given are added or replace the ones of the same name"
)


@pytest.mark.parametrize(
    ("settings", "update"),
    [
        (
            ["--env", "TOKEN=abc123", "--memory", "256"],
            [
                '  UpdateFunctionConfiguration (if it exists) {"FunctionName": "demo", '
                '"MemorySize": 256, "Environment": {"Variables": [{"Key": "TOKEN", '
                '"Value": "***"}]}}',
                f"    ({MERGED})",
            ],
        ),
        (
            ["--memory", "256"],
            [
                '  UpdateFunctionConfiguration (if it exists) {"FunctionName": "demo", '
                '"MemorySize": 256}'
            ],
        ),
    ],
    ids=["env", "no-env"],
)
def test_dry_run_says_the_environment_is_merged_over_the_functions_own(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path, settings: list[str], update: list[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--function",
        "demo",
        "--region",
        REGION,
        *settings,
        "--dry-run",
        env=environ_without_credentials(home),
    )
    assert done.returncode == 0, done.stderr
    assert plane.calls == []
    lines = (done.stdout + done.stderr).splitlines()
    start = next(n for n, line in enumerate(lines) if "UpdateFunctionConfiguration" in line)
    assert lines[start : start + len(update) + 1] == [
        *update,
        '  InvokeFunction {"Event": "GET /", "LogType": "Tail"}',
    ]


def big_package(folder: Path) -> Path:
    source = folder / "big"
    source.mkdir()
    (source / "main.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'big']\n"
    )
    (source / "blob.bin").write_bytes(
        hashlib.shake_256(b"incompressible").digest(MAX_INLINE_ZIP_BYTES + 512 * 1024)
    )
    output = folder / "big.zip"
    done = scf_asgi("package", "main:app", "-o", str(output), "-q", cwd=source)
    assert done.returncode == 0, done.stderr
    assert output.stat().st_size > MAX_INLINE_ZIP_BYTES
    return output


def test_a_package_over_20_mb_goes_through_cos_or_fails_saying_so(
    plane: ControlPlane, tmp_path: Path
) -> None:
    archive = big_package(tmp_path)
    env = credentials_env(tmp_path / "home")
    args = ["main:app", "--zip", str(archive), "--function", "big", "--region", REGION]
    refused = deploy(plane, tmp_path, *args, env=env)
    size = archive.stat().st_size / (1024 * 1024)
    assert (refused.returncode, refused.stderr) == (
        1,
        f"scf-asgi: error: the package is {size:.1f} MB: the API takes at most 20 MB inline; "
        "pass --cos-bucket NAME-APPID (a COS bucket in the function's region) to upload it "
        "there\n",
    )
    assert plane.calls == []
    done = deploy(
        plane,
        tmp_path,
        *args,
        "--cos-bucket",
        "code-1250000000",
        "--cos-endpoint",
        plane.endpoint,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    key = f"scf-asgi/big/{digest}.zip"
    assert plane.cos_objects == {("code-1250000000", key): archive.read_bytes()}
    # as the SDK's models say: the bucket without -APPID, the object from /
    created = [params for action, params in plane.calls if action == "CreateFunction"]
    assert created[0]["Code"] == {
        "CosBucketName": "code",
        "CosObjectName": "/" + key,
        "CosBucketRegion": REGION,
    }
    assert plane.functions["default", "big"].status == "Active"
    assert "status 200" in done.stdout
    plane.calls.clear()
    again = deploy(
        plane,
        tmp_path,
        *args,
        "--cos-bucket",
        "code-1250000000",
        "--no-smoke-test",
        "--cos-endpoint",
        plane.endpoint,
        env=env,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    updated = [params for action, params in plane.calls if action == "UpdateFunctionCode"]
    assert {name: updated[0][name] for name in ("CosBucketName", "CosObjectName")} == {
        "CosBucketName": "code",
        "CosObjectName": "/" + key,
    }
    # a bucket named without its APPID cannot be uploaded to: said before any work
    short = deploy(plane, tmp_path, *args, "--cos-bucket", "code", env=env)
    assert (short.returncode, short.stderr) == (
        1,
        "scf-asgi: error: --cos-bucket 'code': expected the bucket's full name, NAME-APPID "
        "(e.g. code-1250000000)\n",
    )


def test_web_function_deploy(plane: ControlPlane, tmp_path: Path) -> None:
    source = tmp_path / "web"
    shutil.copytree(ROOT / "examples" / "fastapi_app", source)
    done = deploy(
        plane,
        source,
        "app:app",
        "--web",
        "--function",
        "webfn",
        "--region",
        REGION,
        "--concurrency",
        "10",
        "--json",
        env=credentials_env(tmp_path / "home"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    create = dict(plane.calls[1][1])
    code = base64.b64decode(create.pop("Code")["ZipFile"])
    assert create == {
        "FunctionName": "webfn",
        "Namespace": "default",
        "Runtime": "CustomRuntime",
        "Type": "HTTP",
        "Handler": "app.app",
        "InstanceConcurrencyConfig": {"DynamicEnabled": "FALSE", "MaxConcurrency": 10},
    }
    with zipfile.ZipFile(io.BytesIO(code)) as opened:
        names = opened.namelist()
        scf_bootstrap = opened.read("scf_bootstrap").decode()
    # no --interface: both servers ship, and `scf-asgi web` tells the app's kind at start
    assert "vendor/uvicorn/__init__.py" in names and "vendor/gunicorn/__init__.py" in names
    assert scf_bootstrap.rstrip("\n").endswith(" web app:app")
    summary = json.loads(done.stdout)
    assert (summary["type"], summary["smoke_test"], summary["package"]["mode"]) == (
        "HTTP",
        None,
        "web",
    )
    assert plane.actions() == ["GetFunction", "CreateFunction", "GetFunction"]


def test_an_existing_function_of_the_other_type_is_refused(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    env = credentials_env(tmp_path / "home")
    args = ["app:app", "--zip", str(flask_zip), "--function", "demo", "--region", REGION]
    assert deploy(plane, tmp_path, *args, "--no-smoke-test", env=env).returncode == 0
    done = deploy(plane, tmp_path, *args, "--web", env=env)
    assert (done.returncode, done.stderr) == (
        1,
        "scf-asgi: error: function demo exists with Type Event; this deploy is Type HTTP "
        "(--web), and a function's type cannot change: choose another --function name\n",
    )


def test_region_and_credentials_are_checked_before_the_package_is_built(
    plane: ControlPlane, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    shutil.copytree(ROOT / "examples" / "flask_app", project)
    home = tmp_path / "home"
    home.mkdir()
    no_region = deploy(plane, project, "app:app", env=credentials_env(home))
    assert (no_region.returncode, no_region.stdout, no_region.stderr) == (
        1,
        "",
        "scf-asgi: error: no region: pass --region (e.g. ap-guangzhou) or set region in "
        "[tool.scf-asgi]\n",
    )
    no_credentials = deploy(
        plane, project, "app:app", "--region", REGION, env=environ_without_credentials(home)
    )
    assert (no_credentials.returncode, no_credentials.stdout) == (1, "")
    assert no_credentials.stderr.startswith("scf-asgi: error: no Tencent Cloud credentials")
    assert not (project / "dist").exists()  # nothing was built
    assert plane.calls == []


def small_package(folder: Path, app: str) -> Path:
    source = folder / "src"
    source.mkdir(parents=True)
    (source / "main.py").write_text(app)
    output = folder / "small.zip"
    done = scf_asgi("package", "main:app", "-o", str(output), "-q", cwd=source)
    assert done.returncode == 0, done.stderr
    return output


def test_a_smoke_test_answered_with_a_5xx_fails_the_deploy(
    plane: ControlPlane, tmp_path: Path
) -> None:
    archive = small_package(
        tmp_path, "def app(environ, start_response):\n    raise RuntimeError('broken')\n"
    )
    args = ["main:app", "--zip", str(archive), "--function", "broken", "--region", REGION]
    env = credentials_env(tmp_path / "home")
    done = deploy(plane, tmp_path, *args, env=env)
    assert done.returncode == 1
    assert done.stderr == (
        "scf-asgi: error: deployed, but the smoke test failed: GET / answered 500 (the log "
        "tail is above)\n"
    )
    assert "RuntimeError: broken" in done.stdout  # the log tail
    quiet = deploy(plane, tmp_path, *args, "--json", env=env)
    assert quiet.returncode == 1
    assert quiet.stderr.startswith(
        "scf-asgi: error: deployed, but the smoke test failed: GET / answered 500 (its log ends:\n"
    )
    assert "RuntimeError: broken" in quiet.stderr


def test_the_smoke_test_waits_as_long_as_the_function_may_take(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    """Not the SDK's 60 s: the function's timeout and init timeout, and a margin (here 1 + 1
    + 30 s, which a platform taking 40 s to answer exceeds)."""
    plane.invoke_delay = 40
    done = deploy(
        plane,
        tmp_path,
        "app:app",
        "--zip",
        str(flask_zip),
        "--function",
        "slow",
        "--region",
        REGION,
        "--timeout",
        "1",
        "--init-timeout",
        "1",
        env=credentials_env(tmp_path / "home"),
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        "scf-asgi: error: deployed, but the smoke test got no answer: InvokeFunction failed: "
        "ClientNetworkError: "
    )
    assert done.stderr.endswith(
        "(waited up to 32 s: the function's timeout and init timeout, and 30 s for the platform)\n"
    )


def test_an_app_reference_the_handler_rule_refuses_gets_the_default_handler(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    """The API takes "file.function" only (each part 2-60 characters, starting and ending with
    a letter); the bootstrap names the app itself, so the Handler can be any valid one."""
    env = credentials_env(tmp_path / "home")
    done = deploy(
        plane,
        tmp_path,
        "mysite.wsgi:application",
        "--zip",
        str(flask_zip),
        "--function",
        "django",
        "--region",
        REGION,
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    created = [params for action, params in plane.calls if action == "CreateFunction"]
    assert created[0]["Handler"] == "index.main_handler"
    assert json.loads(done.stdout)["smoke_test"]["status"] == 200
    for reference, expected in (
        ("app:app", "app.app"),
        ("main:app_", "index.main_handler"),
        ("a:app", "index.main_handler"),
        ("service.handler", "service.handler"),
    ):
        assert (reference, app_handler(reference) or FALLBACK_HANDLER) == (reference, expected)


def test_env_on_an_existing_function_keeps_its_other_variables(
    plane: ControlPlane, flask_zip: Path, tmp_path: Path
) -> None:
    env = credentials_env(tmp_path / "home")
    base = ["app:app", "--zip", str(flask_zip), "--function", "demo", "--region", REGION]
    first = deploy(plane, tmp_path, *base, "--env", "A=1", "--no-smoke-test", env=env)
    assert first.returncode == 0, first.stderr
    # set in the console meanwhile
    plane.functions["default", "demo"].environment = {
        "Variables": [{"Key": "A", "Value": "1"}, {"Key": "FROM_CONSOLE", "Value": "kept"}]
    }
    again = deploy(plane, tmp_path, *base, "--env", "A=2", "--no-smoke-test", env=env)
    assert again.returncode == 0, again.stderr
    assert plane.functions["default", "demo"].environment == {
        "Variables": [{"Key": "A", "Value": "2"}, {"Key": "FROM_CONSOLE", "Value": "kept"}]
    }
    assert "environment: A set; the function's other variables kept: FROM_CONSOLE" in (again.stdout)
    assert "kept\n" not in again.stdout  # names only, never values
