"""What a package installs: the app's requirements, scf-asgi's own, and what the installed
distributions need on the target.

pip judges environment markers (``; python_version < "3.11"``, ``; platform_machine ==
"x86_64"``) by the interpreter that runs it, whatever ``--python-version`` and ``--platform``
say: a package built on macOS arm64, or for 3.10 by a 3.11 with no 3.10 at hand, would lack
what only the target needs. So markers are judged here, against the target's environments
(`Target.marker_environments`):

- the app's requirement lines (``requirements.txt`` and the files it names with ``-r``, or
  ``[project].dependencies``): a line whose marker holds on the target goes to pip without
  it, one whose marker does not hold is left out;
- scf-asgi's own requirements, from its metadata, with the extras the package asks for;
- after pip, every installed distribution's Requires-Dist, and those of the extras asked of
  it: what the target needs and is not installed is `unmet`, to be installed in another round.

A ``requirements.txt`` in pip's hash-checking mode (``--hash`` on its lines, as
``pip-compile --generate-hashes`` writes it) is installed as it is, alone: scf-asgi's own
requirements go in a later round.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import ConfigurationError, PackageError
from .progress import require

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from importlib.metadata import Distribution

    from packaging.requirements import Requirement

__all__ = [
    "DISTRIBUTION",
    "AppRequirements",
    "Need",
    "normalise",
    "own_requirements",
    "pip_text",
    "read_app_requirements",
    "unmet",
]

DISTRIBUTION = "scf-asgi"
# A logical line of a requirements file goes on after a trailing backslash; a comment starts
# at a # at the start of the line or after white space (pip's rules).
_COMMENT = re.compile(r"(^|\s+)#.*$")
_NESTED = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)$")
_FIND_LINKS = re.compile(r"^(-f|--find-links)(?:\s+|=)(\S+)$")
_SERVERS = {"asgi": {"uvicorn", "wsproto"}, "wsgi": {"gunicorn"}}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(text: str) -> Requirement | None:
    """`text` as a PEP 508 requirement; None for what is not one (a path, a URL, an option)."""
    requirements = require("packaging.requirements", "package")
    try:
        parsed: Requirement = requirements.Requirement(text)
    except requirements.InvalidRequirement:
        return None
    return parsed


def _holds(requirement: Requirement, environments: Sequence[Mapping[str, str]]) -> bool:
    """Whether `requirement` applies on the target (on any of its environments)."""
    marker = requirement.marker
    return marker is None or any(
        marker.evaluate({**environment, "extra": ""}) for environment in environments
    )


def pip_text(requirement: Requirement) -> str:
    """`requirement` as pip takes it, without its marker."""
    text = str(requirement.name)
    if requirement.extras:
        text += "[" + ",".join(sorted(requirement.extras)) + "]"
    if requirement.url:
        return f"{text} @ {requirement.url}"
    return text + str(requirement.specifier)


def _unmarked(requirement: Requirement) -> Requirement:
    found = _requirement(pip_text(requirement))
    assert found is not None
    return found


# -- the app's requirements ----------------------------------------------------------------------


class AppRequirements:
    """The app's requirements as pip is to be given them (`pip_args`: ``-r FILE`` or requirement
    strings), the PEP 508 requirements among them (`roots`, whose extras are asked for), where
    they come from, whether the file is in pip's hash-checking mode, and whether a line named
    scf-asgi itself."""

    __slots__ = ("origin", "pip_args", "roots", "hashed", "named_self")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.pip_args: list[str] = []
        self.roots: list[Requirement] = []
        self.hashed = False
        self.named_self = False


def read_app_requirements(
    source: Path, scratch: Path, environments: Sequence[Mapping[str, str]]
) -> AppRequirements | None:
    """The requirements of the app in `source`: its ``requirements.txt`` (copied into `scratch`
    with the markers judged for the target), else ``[project].dependencies`` of its
    ``pyproject.toml``; None when it has neither."""
    requirements = source / "requirements.txt"
    if requirements.is_file():
        found = AppRequirements("requirements.txt")
        copy = _copy_requirements(requirements, scratch, environments, found, set())
        found.pip_args = ["-r", str(copy)]
        return found
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        from ..project import read_toml

        dependencies = read_toml(pyproject).get("project", {}).get("dependencies", [])
        if not isinstance(dependencies, list) or not all(
            isinstance(item, str) for item in dependencies
        ):
            raise ConfigurationError(f"{pyproject}: [project].dependencies must list strings")
        found = AppRequirements("[project].dependencies")
        for item in dependencies:
            requirement = _requirement(item)
            if requirement is None:
                raise ConfigurationError(
                    f"{pyproject}: [project].dependencies: {item!r} is not a requirement"
                )
            if normalise(requirement.name) == DISTRIBUTION:
                found.named_self = True
            elif _holds(requirement, environments):
                found.roots.append(_unmarked(requirement))
                found.pip_args.append(pip_text(requirement))
        return found
    return None


def _logical_lines(path: Path) -> Iterable[str]:
    """The lines of a requirements file with continuations joined and comments taken out."""
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield _COMMENT.sub("", pending + line).strip()
        pending = ""
    if pending:
        yield _COMMENT.sub("", pending).strip()


def _copy_requirements(
    path: Path,
    scratch: Path,
    environments: Sequence[Mapping[str, str]],
    found: AppRequirements,
    seen: set[Path],
) -> Path:
    """Copy the requirements file `path` into `scratch` for pip, and the files it names with
    ``-r``, each line rewritten: a requirement's marker judged for the target, paths that pip
    reads relative to the file made absolute (the copy is elsewhere), scf-asgi itself left out
    (it is vendored from this installation, and it is not on the index)."""
    seen.add(path.resolve())
    kept: list[str] = []
    for line in _logical_lines(path):
        if not line:
            continue
        nested = _NESTED.match(line)
        links = _FIND_LINKS.match(line)
        if nested:
            option, named = nested.groups()
            target = (path.parent / named).resolve()
            if option in ("-r", "--requirement") and target not in seen and target.is_file():
                target = _copy_requirements(target, scratch, environments, found, seen)
            kept.append(f"{option} {target}")
        elif links and not os.path.isabs(links.group(2)) and "://" not in links.group(2):
            # pip looks for a relative --find-links beside the file first, then in the cwd
            beside = path.parent / links.group(2)
            kept.append(f"{links.group(1)} {beside.resolve()}" if beside.exists() else line)
        elif line.startswith("-"):
            found.hashed = found.hashed or line.split()[0].split("=")[0] == "--require-hashes"
            kept.append(line)
        else:
            # pip's split: the requirement, then its options from the first word with a dash
            words = line.split(" ")
            first_option = next(
                (i for i, word in enumerate(words) if i and word.startswith("-")), len(words)
            )
            text, options = " ".join(words[:first_option]), " ".join(words[first_option:])
            found.hashed = found.hashed or "--hash" in options
            requirement = _requirement(text)
            if requirement is None:  # a path or URL: pip reads it relative to its cwd
                kept.append(line)
            elif normalise(requirement.name) == DISTRIBUTION:
                found.named_self = True
            elif _holds(requirement, environments):
                found.roots.append(_unmarked(requirement))
                kept.append(f"{pip_text(requirement)} {options}".rstrip())
    copy = scratch / f"requirements-{len(list(scratch.glob('requirements-*.txt')))}.txt"
    copy.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return copy


# -- scf-asgi's own --------------------------------------------------------------------------------


def own_requirements(
    *, web: bool, interface: str, speed: bool, environments: Sequence[Mapping[str, str]]
) -> list[Requirement]:
    """scf-asgi's runtime dependencies on the target, from its metadata: with `web`, the
    servers of the ``web`` extra (those of `interface`, or all for "auto"); with `speed`, its
    ``speed`` extra."""
    from importlib import metadata

    try:
        lines = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise PackageError(
            f"{DISTRIBUTION} is not installed (only an installed copy can be vendored): "
            "pip install it, or pip install -e . in its source folder"
        ) from None
    extras = [""] + (["web"] if web else []) + (["speed"] if speed else [])
    found: list[Requirement] = []
    for line in lines:
        requirement = _requirement(line)
        if requirement is None:
            continue
        marker = requirement.marker
        applies = [
            extra
            for extra in extras
            if marker is None
            or any(marker.evaluate({**env, "extra": extra}) for env in environments)
        ]
        if not applies:
            continue
        # a web function of a known interface takes only its own server
        if (
            applies == ["web"]
            and interface in _SERVERS
            and normalise(requirement.name) not in _SERVERS[interface]
        ):
            continue
        found.append(_unmarked(requirement))
    if web and not {"uvicorn", "gunicorn"} & {normalise(r.name) for r in found}:
        raise PackageError(f"the installed {DISTRIBUTION} metadata has no 'web' extra")
    return found


# -- what the installed distributions need -------------------------------------------------------


class Need:
    """A distribution the target needs that is not installed: its name, the versions and the
    extras asked for, who asks (each as ``"name version if marker"`` or where a root comes
    from) and the names of those who ask (normalised; a root's origin for a root)."""

    __slots__ = ("name", "specifier", "extras", "by", "askers")

    def __init__(self, requirement: Requirement, by: str, asker: str) -> None:
        self.name = requirement.name
        self.specifier = requirement.specifier
        self.extras = set(requirement.extras)
        self.by = [by]
        self.askers = {asker}

    def add(self, requirement: Requirement, by: str, asker: str) -> None:
        self.specifier &= requirement.specifier
        self.extras |= requirement.extras
        if by not in self.by:
            self.by.append(by)
        self.askers.add(asker)

    @property
    def text(self) -> str:
        """The requirement as pip takes it."""
        extras = "[" + ",".join(sorted(self.extras)) + "]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"

    def __repr__(self) -> str:
        return f"Need({self.text!r}, by={self.by!r})"


def unmet(
    vendor: Path,
    roots: Sequence[tuple[Requirement, str]],
    environments: Sequence[Mapping[str, str]],
) -> tuple[list[Need], list[str]]:
    """What the target needs that is not installed in `vendor`, and what is installed at a
    version the target's requirements exclude (as sentences).

    Looked at: `roots` (a requirement and where it comes from), and every distribution in `vendor`
    (each was installed because something asked for it), with the Requires-Dist of the extras
    asked of it; a requirement counts when its marker holds in one of `environments`."""
    from importlib import metadata

    installed: dict[str, Distribution] = {}
    for distribution in metadata.distributions(path=[str(vendor)]):
        installed.setdefault(normalise(distribution.metadata["Name"]), distribution)
    needs: dict[str, Need] = {}
    conflicts: list[str] = []
    looked_at: set[tuple[str, str]] = set()

    def asked(requirement: Requirement, by: str, asker: str) -> None:
        name = normalise(requirement.name)
        distribution = installed.get(name)
        if distribution is None:
            if name in needs:
                needs[name].add(requirement, by, asker)
            else:
                needs[name] = Need(requirement, by, asker)
            return
        if requirement.specifier and not requirement.specifier.contains(
            distribution.version, prereleases=True
        ):
            conflicts.append(
                f"{distribution.metadata['Name']} {distribution.version} is installed, but "
                f"{by} needs {pip_text(requirement)}"
            )
        for extra in sorted(requirement.extras):
            requirements_of(name, distribution, normalise(extra))

    def requirements_of(name: str, distribution: Distribution, extra: str) -> None:
        if (name, extra) in looked_at:
            return
        looked_at.add((name, extra))
        who = f"{distribution.metadata['Name']} {distribution.version}"
        for line in distribution.requires or []:
            requirement = _requirement(line)
            if requirement is None:
                continue
            marker = requirement.marker
            if marker is None:
                if not extra:
                    asked(requirement, who, name)
                continue
            holds = {
                asked_extra: any(
                    marker.evaluate({**env, "extra": asked_extra}) for env in environments
                )
                for asked_extra in ("", extra)
            }
            # an extra's own requirements: those that hold with it and not without it
            if holds[extra] and (not extra or not holds[""]):
                asked(_unmarked(requirement), f"{who} if {marker}", name)

    for requirement, by in roots:
        asked(requirement, by, by)
    for name, distribution in sorted(installed.items()):
        requirements_of(name, distribution, "")
    return [needs[name] for name in sorted(needs)], conflicts
