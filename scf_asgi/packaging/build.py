"""Building a code package: an app folder -> a zip that SCF runs as it is.

The steps, each done once, in order (`build_package`):

1. the requirements (`requirements`): ``requirements.txt``, else ``[project].dependencies``
   of the folder's ``pyproject.toml``, with environment markers judged for the target; a line
   naming scf-asgi itself is dropped (it is vendored below, and it is not on the index);
   scf-asgi's own dependencies and, for a web function, its servers (the ``web`` extra of its
   metadata) are added;
2. pip installs them into ``vendor/`` for the target (binary wheels only, the target's
   manylinux platform, CPython X.Y ABI), run in the app's folder by an interpreter of X.Y when
   there is one; then what the installed distributions need on the target and pip left out
   (it judges markers for the machine it runs on) is installed in further rounds;
3. every installed distribution's Requires-Python is checked against X.Y;
4. scf-asgi is copied from the installed copy;
5. the app's files are collected, leaving out what does not belong on the platform;
6. the bootstrap is written;
7. ``.pyc`` are compiled for X.Y with unchecked-hash invalidation (PEP 552) when an X.Y
   interpreter is here: the code folder is read-only on SCF, so nothing compiled there is
   kept, and timestamp ``.pyc`` would be judged stale against the zip's fixed times; an app
   file (or an installed package's top module) that does not compile for X.Y is an error;
8. the zip: entries sorted, fixed times and modes (0755 for the bootstrap and executables,
   0644 for other files), so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path

from ..errors import ConfigurationError, PackageError
from ..platform import CODE_DIR, MAX_CODE_UNPACKED_BYTES, MAX_INLINE_ZIP_BYTES
from .bootstrap import EVENT_BOOTSTRAP, VENDOR, WEB_BOOTSTRAP, event_bootstrap, web_bootstrap
from .progress import require
from .requirements import (
    DISTRIBUTION,
    normalise,
    own_requirements,
    pip_text,
    read_app_requirements,
    unmet,
)
from .target import PIP_MAIN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

    from packaging.requirements import Requirement

    from .progress import Reporter, Step
    from .requirements import AppRequirements
    from .target import Target

__all__ = [
    "PackageSpec",
    "build_package",
    "check_requires_python",
    "collect_sources",
    "write_zip",
]

MB = 1024 * 1024

# Folders left out wherever they are, and why.
_EXCLUDED_FOLDERS = {
    ".git": "version control",
    ".hg": "version control",
    ".svn": "version control",
    "__pycache__": "bytecode of the build machine",
    "node_modules": "node_modules",
    ".venv": "virtualenv",
    ".tox": "cache",
    ".nox": "cache",
    ".pytest_cache": "cache",
    ".mypy_cache": "cache",
    ".ruff_cache": "cache",
    ".hypothesis": "cache",
    ".ipynb_checkpoints": "cache",
    ".cache": "cache",
    ".eggs": "build output",
    ".idea": "editor settings",
    ".vscode": "editor settings",
}
# Files left out wherever they are (glob on the name), and why.
_EXCLUDED_FILES = {
    "*.pyc": "bytecode of the build machine",
    "*.pyo": "bytecode of the build machine",
    ".DS_Store": "editor settings",
}
# Files left out unless asked for: .env files (python-dotenv's, direnv's .envrc) mostly hold
# credentials, which belong in the function's environment, not in a zip anyone with read
# access to the function can download.
_DOTENV = re.compile(r"\.env(\..*)?|\.envrc")
DOTENV_REASON = ".env file (may hold secrets)"
OUTSIDE_REASON = "a symbolic link to outside the app folder"
# At the top of the app folder only.
_EXCLUDED_TOP = {
    "dist": "build output",
    "build": "build output",
    VENDOR: f"{VENDOR}/ (installed afresh for the target)",
    EVENT_BOOTSTRAP: "replaced by the generated bootstrap",
    WEB_BOOTSTRAP: "replaced by the generated scf_bootstrap",
}
_NO_DISTRIBUTION = re.compile(r"No matching distribution found for (\S+)")
_WRONG_PYTHON = re.compile(r"Package '([^']+)' requires a different Python: (\S+) not in '([^']*)'")


class PackageSpec:
    """What to build: the inputs of `build_package`."""

    def __init__(
        self,
        *,
        app: str,
        source: Path,
        output: Path,
        target: Target,
        web: bool = False,
        speed: bool = False,
        interface: str = "auto",
        run_argv: Sequence[str] = (),
        excludes: Sequence[str] = (),
        include_dotenv: bool = False,
        made_by: str = "scf-asgi package",
    ) -> None:
        self.app = app
        self.source = source
        self.output = output
        self.target = target
        self.web = web
        self.speed = speed
        self.interface = interface
        self.run_argv = list(run_argv)
        self.excludes = list(excludes)
        self.include_dotenv = include_dotenv
        self.made_by = made_by


# -- 1. and 2. requirements and pip ------------------------------------------------------------

# Rounds of pip after the first, for what the target needs beyond what pip chose: each adds
# what the previous one's distributions need there.
_ROUNDS = 10


def _pip_command(target: Target, reporter: Reporter) -> list[str]:
    interpreter = target.interpreter
    if interpreter is not None and interpreter.has_pip():
        return [interpreter.path, "-c", PIP_MAIN]
    if interpreter is not None:
        reporter.note(
            f"{interpreter.path} has no pip: installing with {sys.executable}'s pip for "
            f"CPython {target.text}"
        )
    return [sys.executable, "-c", PIP_MAIN]


def _install(
    pip: list[str],
    target: Target,
    vendor: Path,
    source: Path,
    app: AppRequirements | None,
    own: list[Requirement],
    step: Step,
    reporter: Reporter,
) -> None:
    """Install the app's requirements and scf-asgi's into `vendor`: one pip run for both (for
    pip's resolver to see them together), or the app's alone when its file is in hash-checking
    mode (pip would refuse scf-asgi's, which have no hashes there); then rounds of pip for what
    the target needs and is not installed, until nothing is missing."""
    hashed = app is not None and app.hashed
    first = list(app.pip_args) if app is not None else []
    if not hashed:
        first += [pip_text(requirement) for requirement in own]
    if first:
        _pip_install(pip, target, vendor, first, source, step)
    roots = [(requirement, app.origin) for requirement in app.roots] if app is not None else []
    roots += [(requirement, DISTRIBUTION) for requirement in own]
    environments = target.marker_environments()
    # in hash-checking mode: what may go in without a hash (scf-asgi's and what it needs)
    own_side = {DISTRIBUTION}
    for _ in range(_ROUNDS):
        needs, conflicts = unmet(vendor, roots, environments)
        if conflicts:
            raise PackageError(
                f"installed for {target.description}, the dependencies do not fit together "
                f"there: {'; '.join(conflicts)}. Pin versions that do."
            )
        if not needs:
            return
        if hashed:
            unhashed = [need for need in needs if not need.askers & own_side]
            if unhashed:
                assert app is not None
                raise PackageError(
                    f"{app.origin} is in pip's hash-checking mode, but CPython {target.text} "
                    "on Linux needs what it does not list: "
                    + "; ".join(f"{need.text} (for {', '.join(need.by)})" for need in unhashed)
                    + ". Add them with their hashes (a lock compiled for the target, e.g. "
                    f"`uv pip compile --generate-hashes --python-version {target.text} "
                    "--python-platform linux`)."
                )
            own_side |= {normalise(need.name) for need in needs}
            reporter.note(
                f"{app.origin if app else 'requirements.txt'} is in pip's hash-checking mode: "
                f"{DISTRIBUTION}'s own requirements are installed after it, without hashes: "
                + ", ".join(need.text for need in needs)
            )
        else:
            reporter.note(
                "pip judges environment markers for the machine it runs on; installed too, "
                f"for {target.description}: "
                + "; ".join(f"{need.text} (for {', '.join(need.by)})" for need in needs)
            )
        _pip_install(pip, target, vendor, [need.text for need in needs], source, step, no_deps=True)
    raise PackageError(
        f"dependencies were still missing after {_ROUNDS} rounds of pip: "
        + ", ".join(need.text for need in unmet(vendor, roots, environments)[0])
    )


def _pip_install(
    pip: list[str],
    target: Target,
    vendor: Path,
    requirements: list[str],
    source: Path,
    step: Step,
    *,
    no_deps: bool = False,
) -> None:
    command = [
        *pip,
        "install",
        "--target",
        str(vendor),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        target.text,
        "--abi",
        target.abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
        "--no-compile",
        "--no-warn-script-location",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
    ]
    for tag in target.platform_tags:
        command += ["--platform", tag]
    if no_deps:
        # the next round judges their requirements for the target
        command.append("--no-deps")
    command += requirements
    environment = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    environment.pop("PIP_USER", None)  # --target and --user exclude each other
    if no_deps:
        environment.pop("PIP_REQUIRE_HASHES", None)  # what these rounds add has no hashes
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
        # where `pip install -r requirements.txt` is run: its relative paths mean that folder
        cwd=str(source),
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.strip():
            step.update(line.strip()[:60])
    code = process.wait()
    if code == 0:
        return
    output = "\n".join(lines)
    missing = _NO_DISTRIBUTION.findall(output)
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise PackageError(
            f"no binary wheel for {target.description} (or no such package): {names}. "
            "SCF cannot build packages from source: pin a version that ships such a wheel "
            "(see the package's files on the index), or choose another --python.\n"
            f"pip said:\n{_tail(output)}"
        )
    wrong = _WRONG_PYTHON.findall(output)
    if wrong:
        names = ", ".join(f"{name} (Requires-Python {spec})" for name, _, spec in wrong)
        raise PackageError(
            f"needs another Python than CPython {target.text}: {names}.\npip said:\n{_tail(output)}"
        )
    raise PackageError(f"pip could not install the requirements:\n{_tail(output)}")


def _tail(output: str, lines: int = 25) -> str:
    return "\n".join("    " + line for line in output.strip().splitlines()[-lines:])


# -- 3. Requires-Python ------------------------------------------------------------------------


def check_requires_python(
    folder: Path, version: tuple[int, ...]
) -> tuple[list[dict[str, str]], list[str]]:
    """The distributions installed in `folder` (name, version, requires_python), and a
    warning for each whose Requires-Python admits only some patch releases of `version`.
    Raises PackageError naming every distribution that cannot run on `version` at all.

    `version` is the full version of the target interpreter when one was found, else X.Y,
    which is then checked as both X.Y.0 and its last patch release."""
    from importlib import metadata

    specifiers = require("packaging.specifiers", "package")
    series = f"{version[0]}.{version[1]}"
    if len(version) >= 3:
        probes = [f"{series}.{version[2]}"]
    else:
        probes = [f"{series}.0", f"{series}.99"]
    found: list[dict[str, str]] = []
    refused: list[str] = []
    warnings: list[str] = []
    for distribution in metadata.distributions(path=[str(folder)]):
        name = distribution.metadata["Name"]
        requires_python = distribution.metadata.get("Requires-Python") or ""
        found.append(
            {
                "name": name,
                "version": distribution.version,
                "requires_python": requires_python,
            }
        )
        if not requires_python:
            continue
        try:
            allowed = specifiers.SpecifierSet(requires_python)
        except specifiers.InvalidSpecifier:
            warnings.append(f"{name} {distribution.version}: unreadable Requires-Python")
            continue
        admitted = [probe for probe in probes if allowed.contains(probe, prereleases=True)]
        if not admitted:
            refused.append(f"{name} {distribution.version} (Requires-Python {requires_python})")
        elif len(admitted) < len(probes):
            warnings.append(
                f"{name} {distribution.version} needs Python {requires_python}: only some "
                f"{series} releases qualify; check the platform's patch release"
            )
    if refused:
        raise PackageError(
            f"installed for CPython {series} but cannot run on it: "
            + "; ".join(refused)
            + ". Pin releases that support it, or choose another --python."
        )
    found.sort(key=lambda item: normalise(item["name"]))
    return found, warnings


def _tidy_vendor(vendor: Path) -> None:
    """Drop what pip leaves that does not belong in a package: console scripts (their shebang
    names this machine's interpreter) and records of where files came from."""
    shutil.rmtree(vendor / "bin", ignore_errors=True)
    for path in sorted(vendor.rglob("*")):
        if path.name == "__pycache__" and path.is_dir():
            shutil.rmtree(path)
        elif path.name == "direct_url.json" and path.parent.name.endswith(".dist-info"):
            path.unlink()


# -- 4. scf-asgi itself ------------------------------------------------------------------------


def _vendor_self(vendor: Path) -> None:
    from importlib import metadata

    import scf_asgi

    package = Path(scf_asgi.__file__).resolve().parent
    destination = vendor / "scf_asgi"
    if destination.exists():
        shutil.rmtree(destination)
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_file():
            (destination / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination / relative)
    # Its metadata too, so importlib.metadata.version("scf-asgi") works in the function.
    distribution = metadata.distribution(DISTRIBUTION)
    info = vendor / f"scf_asgi-{distribution.version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(distribution.read_text("METADATA") or "", encoding="utf-8")
    (info / "INSTALLER").write_text("scf-asgi package\n", encoding="utf-8")


# -- 5. the app's files ------------------------------------------------------------------------


class Excluded:
    """A file or folder left out of the package, and why."""

    __slots__ = ("path", "reason", "files")

    def __init__(self, path: str, reason: str, files: int) -> None:
        self.path = path
        self.reason = reason
        self.files = files

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "reason": self.reason, "files": self.files}


def _count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _user_excluded(relative: str, patterns: Sequence[str]) -> str | None:
    """The first --exclude pattern matching `relative` (a pattern without ``/`` also matches
    any one name in the path; a trailing ``/`` matches folders only, here any name)."""
    parts = relative.split("/")
    for pattern in patterns:
        bare = pattern.rstrip("/")
        if fnmatchcase(relative, bare):
            return pattern
        if "/" not in bare and any(fnmatchcase(part, bare) for part in parts):
            return pattern
    return None


def collect_sources(
    source: Path,
    patterns: Sequence[str],
    also_excluded: Sequence[Path] = (),
    *,
    include_dotenv: bool = False,
) -> tuple[list[str], list[Excluded]]:
    """The app's files to package (relative POSIX paths, sorted) and what was left out.

    A symbolic link to a file is packaged as that file when it stays in `source`; one that
    leads out of it is left out (a link to ~/.ssh/ or to another project's secrets would
    otherwise ship its target)."""
    files: list[str] = []
    excluded: list[Excluded] = []
    skip = {path.resolve() for path in also_excluded}
    inside = source.resolve()
    for folder, folders, names in os.walk(source):
        here = Path(folder)
        relative_folder = here.relative_to(source).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        kept_folders = []
        for name in sorted(folders):
            path = here / name
            relative = prefix + name
            reason = None
            if path.is_symlink():
                reason = "a symbolic link to a folder"
            elif name in _EXCLUDED_FOLDERS:
                reason = _EXCLUDED_FOLDERS[name]
            elif not prefix and name in _EXCLUDED_TOP:
                reason = _EXCLUDED_TOP[name]
            elif name.endswith(".egg-info"):
                reason = "build output"
            elif (path / "pyvenv.cfg").exists() or (path / "conda-meta").is_dir():
                reason = "virtualenv"
            elif path.resolve() in skip:
                reason = "the output folder"
            else:
                pattern = _user_excluded(relative, patterns)
                if pattern is not None:
                    reason = f"--exclude {pattern}"
            if reason is None:
                kept_folders.append(name)
            else:
                files_in = 0 if path.is_symlink() else _count_files(path)
                excluded.append(Excluded(relative + "/", reason, files_in))
        folders[:] = kept_folders
        for name in sorted(names):
            path = here / name
            relative = prefix + name
            reason = None
            for glob, why in _EXCLUDED_FILES.items():
                if fnmatchcase(name, glob):
                    reason = why
                    break
            if reason is None and not prefix and name in _EXCLUDED_TOP:
                reason = _EXCLUDED_TOP[name]
            if reason is None and not include_dotenv and _DOTENV.fullmatch(name):
                reason = DOTENV_REASON
            if reason is None and path.resolve() in skip:
                reason = "the output file"
            if reason is None and path.is_symlink() and not _within(path.resolve(), inside):
                reason = OUTSIDE_REASON
            if reason is None:
                pattern = _user_excluded(relative, patterns)
                if pattern is not None:
                    reason = f"--exclude {pattern}"
            if reason is None and not path.is_file():
                reason = "not a regular file"
            if reason is None:
                files.append(relative)
            else:
                excluded.append(Excluded(relative, reason, 1))
    return sorted(files), excluded


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _module_present(stage: Path, app: str) -> bool:
    module = app.partition(":")[0] if ":" in app else app.rpartition(".")[0]
    parts = module.split(".")
    for base in (stage, stage / VENDOR):
        path = base.joinpath(*parts)
        # a module, a package (regular or namespace), or an extension module
        if path.with_suffix(".py").is_file() or path.is_dir():
            return True
        if any(path.parent.glob(path.name + ".*.so")):
            return True
    return False


def _note_exclusions(source: Path, excluded: list[Excluded], reporter: Reporter) -> None:
    """Say what was left out that the app may have meant to ship."""
    dotenv = [item.path for item in excluded if item.reason == DOTENV_REASON]
    if dotenv:
        reporter.note(
            f"left out {', '.join(dotenv)}: .env files mostly hold secrets, which belong in the "
            "function's environment (--env KEY=VALUE, or env in [tool.scf-asgi]); "
            "--include-dotenv packages them"
        )
    outside = [item.path for item in excluded if item.reason == OUTSIDE_REASON]
    if outside:
        links = ", ".join(f"{path} -> {(source / path).resolve()}" for path in outside)
        reporter.note(
            f"left out symbolic links to files outside {source}: {links} (copy a file into "
            "the folder if the app needs it)"
        )


# -- 7. .pyc ---------------------------------------------------------------------------------------


# Run by the target's interpreter: compile every .py of the stage for it, in sorted order in
# one process, and print a JSON line for each file that does not compile. Equal sources give
# equal .pyc only in a fixed order in one process (marshal marks objects referenced twice,
# which depends on what was compiled before) and with a fixed hash seed (a frozenset constant
# is written in hash order). The file names in the code objects are where the code runs, not
# this build's scratch folder (which would also make every build's bytes differ).
_COMPILE = """\
import json, os, py_compile, sys
stage, code_dir = sys.argv[1], sys.argv[2]
for folder, folders, names in os.walk(stage):
    folders.sort()
    for name in sorted(names):
        if not name.endswith(".py"):
            continue
        path = os.path.join(folder, name)
        relative = os.path.relpath(path, stage).replace(os.sep, "/")
        try:
            py_compile.compile(
                path,
                dfile=code_dir + "/" + relative,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except py_compile.PyCompileError as exc:
            error = exc.exc_value
            print(json.dumps({
                "file": relative,
                "line": getattr(error, "lineno", None),
                "error": exc.exc_type_name + ": " + (getattr(error, "msg", None) or str(error)),
            }))
"""


class CompileError:
    """A file of the package that does not compile for the target."""

    __slots__ = ("path", "line", "error")

    def __init__(self, path: str, line: int | None, error: str) -> None:
        self.path = path  # in the package
        self.line = line
        self.error = error

    def shown(self, where: str) -> str:
        at = f", line {self.line}" if self.line else ""
        return f"{where}{at}: {self.error}"


def _compile(stage: Path, interpreter_path: str) -> list[CompileError]:
    """Compile every .py of `stage` for the target; the files that did not compile."""
    done = subprocess.run(
        [interpreter_path, "-c", _COMPILE, str(stage), CODE_DIR],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    if done.returncode != 0:
        raise PackageError(
            f"{interpreter_path} could not compile the package:\n{_tail(done.stderr)}"
        )
    return [
        CompileError(item["file"], item["line"], item["error"])
        for item in map(json.loads, done.stdout.splitlines())
    ]


def _parse_for_target(
    source: Path, files: Sequence[str], version: tuple[int, int]
) -> list[CompileError]:
    """With no interpreter of the target's version: the app's files that this newer one, asked
    for the target's grammar (best effort: `ast.parse`'s feature_version), cannot compile."""
    import ast

    errors = []
    for relative in files:
        if not relative.endswith(".py"):
            continue
        path = source / relative
        try:
            tree = ast.parse(path.read_bytes(), str(path), feature_version=version)
            compile(tree, str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            line = exc.lineno if isinstance(exc, SyntaxError) else None
            message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
            errors.append(CompileError(relative, line, f"{type(exc).__name__}: {message}"))
    return errors


def _refuse_what_does_not_compile(
    errors: list[CompileError], source: Path, target: Target, reporter: Reporter
) -> None:
    """A file of the app, or the top module of an installed package, that does not compile
    for the target is an error: importing it there would fail. Other files of installed
    packages are a warning: packages ship tests, examples and modules for other versions of
    Python that are never imported on this one."""
    app = [error for error in errors if not error.path.startswith(VENDOR + "/")]
    tops = [
        error
        for error in errors
        if error.path.startswith(VENDOR + "/")
        and (error.path.count("/") == 1 or error.path.endswith("/__init__.py"))
        and error.path.count("/") <= 2
    ]
    rest = [error for error in errors if error not in app and error not in tops]
    if rest:
        shown = "\n".join("  " + error.shown(error.path) for error in rest[:12])
        more = f"\n  and {len(rest) - 12} more" if len(rest) > 12 else ""
        reporter.warn(
            f"{len(rest)} file(s) of installed packages do not compile for CPython "
            f"{target.text} and ship as source (fine if nothing imports them there, as with "
            f"tests or modules for other Python versions):\n{shown}{more}"
        )
    problems = [error.shown(str(source / error.path)) for error in app]
    problems += [error.shown(error.path) + " (an installed package)" for error in tops]
    if problems:
        raise PackageError(
            f"{len(problems)} file(s) do not compile for CPython {target.text}, so importing "
            "them on the platform would fail:\n"
            + "\n".join("  " + problem for problem in problems)
            + "\nFix them (or pin packages that support that version), or leave files the "
            "platform never imports out with --exclude."
        )


# -- 8. the zip -----------------------------------------------------------------------------


def _zip_time() -> tuple[int, int, int, int, int, int]:
    """The time every entry carries: $SOURCE_DATE_EPOCH if set, else the zip format's first
    day (1980-01-01); either way fixed, so equal inputs give equal bytes."""
    import time

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        moment = max(int(epoch), 315532800)  # 1980-01-01T00:00:00Z
        parts = time.gmtime(moment)
        return (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5] - parts[5] % 2)
    return (1980, 1, 1, 0, 0, 0)


def _walk_stage(stage: Path) -> Iterator[tuple[str, Path, bool]]:
    """(zip name, path, is a folder) of everything in `stage`, in sorted order."""
    entries = []
    for path in stage.rglob("*"):
        relative = path.relative_to(stage).as_posix()
        if path.is_dir():
            entries.append((relative + "/", path, True))
        else:
            entries.append((relative, path, False))
    entries.sort(key=lambda entry: entry[0])
    yield from entries


def write_zip(stage: Path, output: Path, reporter: Reporter) -> tuple[int, str, int]:
    """Zip `stage` into `output` deterministically; (bytes, sha256, number of files)."""
    moment = _zip_time()
    entries = list(_walk_stage(stage))
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the output and renamed over it when whole, so a failed or interrupted
    # build leaves the previous zip as it was, and no half-written one.
    partial = output.with_name(output.name + ".partial")
    count = 0
    try:
        with (
            reporter.progress("zipping", len(entries)) as advance,
            zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive,
        ):
            for name, path, is_folder in entries:
                info = zipfile.ZipInfo(name, moment)
                info.create_system = 3  # Unix, so the modes below are read by unzip
                if is_folder:
                    info.external_attr = (0o40755 << 16) | 0x10
                    archive.writestr(info, b"")
                else:
                    executable = name in (EVENT_BOOTSTRAP, WEB_BOOTSTRAP) or os.access(
                        path, os.X_OK
                    )
                    info.external_attr = (0o100755 if executable else 0o100644) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.file_size = path.stat().st_size
                    with path.open("rb") as source, archive.open(info, "w") as target:
                        shutil.copyfileobj(source, target, 1024 * 1024)
                    count += 1
                advance()
        digest = hashlib.sha256()
        with partial.open("rb") as file:
            for block in iter(lambda: file.read(1024 * 1024), b""):
                digest.update(block)
        os.replace(partial, output)
    except BaseException:  # Ctrl-C too
        partial.unlink(missing_ok=True)
        raise
    return output.stat().st_size, digest.hexdigest(), count


# -- all of it -------------------------------------------------------------------------------------


def _size_text(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB / 10 else f"{size / 1024:.1f} kB"


def write_script(path: Path, text: str) -> None:
    """Write a bootstrap: LF line endings on every system, mode 0755."""
    with path.open("w", encoding="utf-8", newline="\n") as file:
        file.write(text)
    path.chmod(0o755)


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _check_unpacked(unpacked: int) -> None:
    if unpacked > MAX_CODE_UNPACKED_BYTES:
        raise PackageError(
            f"the package unpacks to {_size_text(unpacked)}; SCF allows "
            f"{MAX_CODE_UNPACKED_BYTES // MB} MB unpacked (layers included): leave out more "
            "(--exclude), or move large files to COS or a layer"
        )


def build_package(spec: PackageSpec, reporter: Reporter) -> dict[str, Any]:
    """Build the zip of `spec`; the summary (what ``--json`` prints)."""
    source = spec.source.resolve()
    if not source.is_dir():
        raise ConfigurationError(f"--source {spec.source}: not a folder")
    target = spec.target
    interpreter = target.interpreter
    reporter.say(
        f"Packaging {spec.app} from {source} for {target.description}, as "
        + ("a web function" if spec.web else "an event function (Custom Runtime)")
    )
    if interpreter is None:
        reporter.warn(
            f"no CPython {target.text} interpreter on this machine: the package ships sources "
            "only (no .pyc: every cold start compiles every module). Install Python "
            f"{target.text} (or pass --interpreter) for a faster package."
        )
    else:
        full = ".".join(str(part) for part in interpreter.version)
        reporter.say(f"Using {interpreter.path} (CPython {full})")

    with tempfile.TemporaryDirectory(prefix="scf-asgi-package-") as scratch_name:
        scratch = Path(scratch_name)
        stage = scratch / "package"
        vendor = stage / VENDOR
        vendor.mkdir(parents=True)

        environments = target.marker_environments()
        app_requirements = read_app_requirements(source, scratch, environments)
        if app_requirements is None:
            reporter.note("no requirements.txt or pyproject.toml dependencies: the app needs none")
        elif app_requirements.named_self:
            reporter.note(
                f"{app_requirements.origin} names {DISTRIBUTION}: left to pip out, it is "
                "vendored from this installation"
            )
        own = own_requirements(
            web=spec.web, interface=spec.interface, speed=spec.speed, environments=environments
        )
        pip = _pip_command(target, reporter)
        with reporter.step("installing dependencies") as step:
            _install(pip, target, vendor, source, app_requirements, own, step, reporter)
            _tidy_vendor(vendor)
            version = interpreter.version if interpreter else target.version
            distributions, warnings = check_requires_python(vendor, version)
            step.result = f"{len(distributions)} distributions"
        for warning in warnings:
            reporter.warn(warning)
        _vendor_self(vendor)

        files, excluded = collect_sources(
            source, spec.excludes, [spec.output], include_dotenv=spec.include_dotenv
        )
        _note_exclusions(source, excluded, reporter)
        # Checked before copying too, so a huge folder fails at once.
        _check_unpacked(_folder_size(vendor) + sum((source / f).stat().st_size for f in files))
        for relative in files:
            destination = stage / relative
            if relative.split("/", 1)[0] == VENDOR:
                raise PackageError(f"{relative}: {VENDOR}/ is where dependencies are installed")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination)
            if os.access(source / relative, os.X_OK):
                destination.chmod(0o755)
        if not _module_present(stage, spec.app):
            raise ConfigurationError(
                f"{spec.app}: its module is neither in {source} nor among the installed "
                "dependencies (is --source the app's folder?)"
            )

        if spec.web:
            bootstrap_name = WEB_BOOTSTRAP
            web_argv = [] if spec.interface == "auto" else ["--interface", spec.interface]
            script = web_bootstrap(spec.app, web_argv, target.version, made_by=spec.made_by)
        else:
            bootstrap_name = EVENT_BOOTSTRAP
            script = event_bootstrap(spec.app, spec.run_argv, target.version, made_by=spec.made_by)
        write_script(stage / bootstrap_name, script)

        if interpreter is not None:
            with reporter.step(f"compiling .pyc for CPython {target.text}") as step:
                compile_errors = _compile(stage, interpreter.path)
                step.result = "unchecked-hash (PEP 552)"
        elif sys.version_info[:2] >= target.version:
            compile_errors = _parse_for_target(source, files, target.version)
        else:
            compile_errors = []
            reporter.note(
                f"the app's files are not checked for CPython {target.text}'s grammar: this is "
                f"CPython {sys.version_info[0]}.{sys.version_info[1]}, which does not know it"
            )
        _refuse_what_does_not_compile(compile_errors, source, target, reporter)

        unpacked = _folder_size(stage)
        _check_unpacked(unpacked)
        with reporter.step("zipping") as step:
            size, sha256, count = write_zip(stage, spec.output, reporter)
            step.result = f"{count} files"

    if excluded:
        reasons: dict[str, list[Excluded]] = {}
        for item in excluded:
            reasons.setdefault(item.reason, []).append(item)
        reporter.say("Left out:")
        for reason, items in sorted(reasons.items()):
            shown = ", ".join(item.path for item in items[:4])
            more = f" and {len(items) - 4} more" if len(items) > 4 else ""
            total = sum(item.files for item in items)
            reporter.say(f"  {reason}: {shown}{more} ({total} files)")
    if size > MAX_INLINE_ZIP_BYTES:
        reporter.warn(
            f"{_size_text(size)} is over the {MAX_INLINE_ZIP_BYTES // MB} MB an API call can "
            "upload inline: `scf-asgi deploy` needs --cos-bucket for it"
        )
    reporter.say(
        f"Wrote {spec.output} ({_size_text(size)}, {_size_text(unpacked)} unpacked, {count} files)"
    )
    return {
        "zip": str(spec.output),
        "bytes": size,
        "unpacked_bytes": unpacked,
        "files": count,
        "sha256": sha256,
        "app": spec.app,
        "mode": "web" if spec.web else "event",
        "bootstrap": bootstrap_name,
        "python": target.text,
        "interpreter": interpreter.path if interpreter else None,
        "compiled": interpreter is not None,
        "compile_failures": len(compile_errors),
        "distributions": distributions,
        "excluded": [item.as_dict() for item in excluded],
        "notes": reporter.notes,
        "warnings": reporter.warnings,
    }


def dumps(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=True)
