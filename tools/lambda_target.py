"""The Lambda runtime a package is built for, and the checks that it fits.

A zip built on the developer's Python must run on the function's runtime:
every compiled module must come from a wheel built for that runtime's Python,
ABI, CPU architecture and C library. Chalice's own packager cannot promise
that (it packages for the interpreter that runs it, and "continues" without a
dependency it cannot find), so tools/package.py installs the locked wheels for
a :class:`Target` itself and :func:`verify_package` checks the result.

Runtimes (AWS Lambda developer guide, "Lambda runtimes"): python3.12 and
python3.13 run on Amazon Linux 2023, whose glibc is 2.34, on x86_64 or arm64
(aarch64). python3.11 and older run on Amazon Linux 2 (end of life), python3.14
is not accepted by the aws provider this project pins; neither is offered.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Optional, Tuple

# runtime -> (Python version, glibc of its Amazon Linux)
RUNTIMES: Dict[str, Tuple[Tuple[int, int], Tuple[int, int]]] = {
    "python3.12": ((3, 12), (2, 34)),
    "python3.13": ((3, 13), (2, 34)),
}
# Lambda's architecture name -> the machine name in wheel tags and ELF headers.
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
_ELF_MACHINES = {"x86_64": 62, "aarch64": 183}  # e_machine: EM_X86_64, EM_AARCH64
# Oldest glibc a manylinux tag names (manylinux1 = glibc 2.5).
_OLDEST_GLIBC_MINOR = 5
_LEGACY_MANYLINUX = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}

# Never in the zip: the local stack, tests and tools are dev-only; boto3 and
# botocore come with the Lambda runtime (AWS keeps them current there).
DEV_ONLY_TOP_LEVEL = frozenset({
    "tests", "test", "local_stack", "broadcast_client", "bench", "tools", "terraform",
    "web", "docs", ".chalice", "boto3", "botocore", "s3transfer", "moto", "pytest",
    "_pytest", "pip", "setuptools", "uv",
})
# Must be in the zip, or the functions fail at run time rather than at deploy.
REQUIRED_FILES = ("app.py", "chalicelib/__init__.py", "chalice/app.py")
# cryptography's compiled core: without it PyJWT cannot verify RS256 and every
# speaker is refused (the failure Chalice's packager lets through).
RUST_BINDING = "cryptography/hazmat/bindings/_rust.abi3.so"


class TargetError(Exception):
    """The package does not fit, or cannot be built for, the target runtime."""


@dataclass(frozen=True)
class Target:
    runtime: str = "python3.13"
    architecture: str = "x86_64"

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise TargetError(
                f"runtime {self.runtime!r} is not supported: choose one of "
                f"{', '.join(sorted(RUNTIMES))} (Amazon Linux 2023 runtimes)")
        if self.architecture not in ARCHITECTURES:
            raise TargetError(
                f"architecture {self.architecture!r} is not a Lambda architecture: "
                f"choose one of {', '.join(sorted(ARCHITECTURES))}")

    @property
    def python_version(self) -> Tuple[int, int]:
        return RUNTIMES[self.runtime][0]

    @property
    def glibc(self) -> Tuple[int, int]:
        return RUNTIMES[self.runtime][1]

    @property
    def machine(self) -> str:
        return ARCHITECTURES[self.architecture]

    @property
    def interpreter(self) -> str:
        major, minor = self.python_version
        return f"cp{major}{minor}"

    def describe(self) -> str:
        major, minor = self.glibc
        return (f"{self.runtime} on {self.architecture} "
                f"(Amazon Linux 2023, glibc {major}.{minor})")

    def platforms(self) -> List[str]:
        """manylinux platform tags the runtime accepts, best first."""
        major, newest = self.glibc
        tags = [f"manylinux_{major}_{minor}_{self.machine}"
                for minor in range(newest, _OLDEST_GLIBC_MINOR - 1, -1)]
        tags += [f"{legacy}_{self.machine}" for legacy, minor in _LEGACY_MANYLINUX.items()
                 if minor <= newest]
        return tags

    def supported_tags(self):
        """Every wheel tag an interpreter of the runtime would install."""
        from packaging import tags

        platforms = self.platforms()
        supported = set(tags.cpython_tags(self.python_version, platforms=platforms))
        supported.update(tags.compatible_tags(self.python_version, self.interpreter, platforms))
        return supported

    def pip_arguments(self) -> List[str]:
        major, minor = self.python_version
        args = ["--only-binary=:all:", "--implementation", "cp",
                "--python-version", f"{major}.{minor}",
                "--abi", self.interpreter, "--abi", "abi3", "--abi", "none"]
        for platform in self.platforms():
            args += ["--platform", platform]
        return args

    def marker_environment(self) -> Dict[str, str]:
        """PEP 508 marker values of the runtime's interpreter."""
        major, minor = self.python_version
        return {
            "implementation_name": "cpython", "implementation_version": f"{major}.{minor}.0",
            "os_name": "posix", "platform_machine": self.machine,
            "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": "Linux", "platform_version": "", "python_full_version":
            f"{major}.{minor}.0", "python_version": f"{major}.{minor}", "sys_platform": "linux",
        }

    def to_dict(self) -> dict:
        return {
            "runtime": self.runtime,
            "architecture": self.architecture,
            "python_version": "%d.%d" % self.python_version,
            "glibc": "%d.%d" % self.glibc,
        }


# ---------------------------------------------------------------------------
# The lock file
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedRequirement:
    name: str  # normalised
    version: str
    hashes: Tuple[str, ...]  # sha256 hex digests
    line: str  # "name==version" as written, without marker or hashes


def read_lock(path: Path, target: Target) -> List[LockedRequirement]:
    """The pinned, hashed requirements of ``path`` that apply to ``target``.

    Markers are evaluated for the target's interpreter, not the builder's (a
    universal lock may hold lines for other Pythons). Every line must pin one
    version (``==``) and carry hashes, as a compiled lock does.
    """
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    text = Path(path).read_text()
    logical = re.sub(r"\\\s*\n", " ", text)
    environment = target.marker_environment()
    locked = []
    for raw in logical.splitlines():
        raw = raw.split(" #", 1)[0].strip()
        if not raw or raw.startswith("#"):
            continue
        if raw.startswith("-"):
            raise TargetError(f"{path}: options are not allowed in the lock ({raw.split()[0]})")
        parts = raw.split()
        hashes = tuple(p.split("=", 1)[1].split(":", 1)[1] for p in parts if p.startswith("--hash="))
        spec = " ".join(p for p in parts if not p.startswith("--hash="))
        requirement = Requirement(spec)
        if requirement.marker is not None and not Marker(str(requirement.marker)).evaluate(environment):
            continue
        pins = [s for s in requirement.specifier if s.operator == "=="]
        if len(pins) != 1 or not hashes:
            raise TargetError(
                f"{path}: {requirement.name} must be pinned with == and hashed "
                f"(regenerate the lock with `make requirements`)")
        locked.append(LockedRequirement(
            name=canonicalize_name(requirement.name), version=pins[0].version,
            hashes=hashes, line=f"{requirement.name}=={pins[0].version}"))
    return locked


def write_target_lock(locked: Iterable[LockedRequirement], path: Path) -> Path:
    """The lock for pip, markers resolved: ``name==version --hash=...`` lines."""
    lines = []
    for requirement in locked:
        hashes = " ".join(f"--hash=sha256:{digest}" for digest in requirement.hashes)
        lines.append(f"{requirement.line} {hashes}")
    path.write_text("\n".join(lines) + "\n")
    return path


def missing_wheels(locked: Iterable[LockedRequirement], wheelhouse: Path,
                   target: Target) -> List[str]:
    """Locked requirements with no wheel in ``wheelhouse`` that both matches a
    locked hash and fits the target; each as ``name==version``."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    supported = target.supported_tags()
    fitting: Dict[Tuple[str, str], List[Path]] = {}
    for wheel in sorted(Path(wheelhouse).glob("*.whl")) if Path(wheelhouse).is_dir() else []:
        try:
            name, version, _build, tags = parse_wheel_filename(wheel.name)
        except ValueError:
            continue
        if tags & supported:
            fitting.setdefault((canonicalize_name(name), str(version)), []).append(wheel)
    missing = []
    for requirement in locked:
        candidates = fitting.get((requirement.name, requirement.version), [])
        if not any(_sha256(path) in requirement.hashes for path in candidates):
            missing.append(requirement.line)
    return missing


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------
# Checking a built zip
# ---------------------------------------------------------------------------


def _wheel_metadata(text: str) -> Tuple[List[str], bool]:
    tags, purelib = [], False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Tag":
            tags.append(value.strip())
        elif key.strip() == "Root-Is-Purelib":
            purelib = value.strip().lower() == "true"
    return tags, purelib


def _extension_tag_problem(path: str, target: Target) -> Optional[str]:
    """Why an extension's file name says it is for another interpreter, if it does."""
    name = PurePosixPath(path).name
    match = re.search(r"\.cpython-(\d)(\d+)[a-z]*-([a-z0-9_]+)-linux-gnu\.so$", name)
    if match:
        version = (int(match[1]), int(match[2]))
        if version != target.python_version or match[3] != target.machine:
            return (f"{path} is built for CPython {version[0]}.{version[1]} on {match[3]}, "
                    f"not {target.describe()}")
    elif re.search(r"\.(cpython|cp)\d+.*\.so$|\.pyd$|darwin|win_amd64|musl", name):
        return f"{path} is not a Linux CPython extension for {target.describe()}"
    return None


def verify_package(zip_path: Path, target: Target,
                   expected_packages: Iterable[str] = ()) -> Dict[str, dict]:
    """Check the deployment zip against the target; return what it ships.

    Raises :class:`TargetError` listing every problem: a compiled module from a
    wheel whose tags do not fit (Python, ABI, architecture, glibc), or of no
    known wheel at all, an extension for another machine (ELF header), a locked
    package or cryptography's Rust binding missing, the app missing, or a
    ``__pycache__``, ``.pyc``, tests or dev-only module shipped.
    """
    from packaging.tags import parse_tag
    from packaging.utils import canonicalize_name

    problems: List[str] = []
    supported = target.supported_tags()
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        name_set = set(names)
        for required in REQUIRED_FILES + (RUST_BINDING,):
            if required not in name_set:
                problems.append(f"{required} is missing")
        for name in names:
            parts = PurePosixPath(name).parts
            if "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
                problems.append(f"{name}: compiled bytecode must not ship (Lambda compiles on import)")
            elif parts[0] in DEV_ONLY_TOP_LEVEL or parts[0].endswith(".dist-info") and \
                    canonicalize_name(parts[0].rsplit("-", 1)[0]) in {"boto3", "botocore"}:
                problems.append(f"{name}: dev-only or runtime-provided code must not ship")
            elif any(part in ("tests", "test") for part in parts[:-1]):
                problems.append(f"{name}: tests must not ship")

        shipped: Dict[str, dict] = {}
        owner_of: Dict[str, str] = {}
        for name in names:
            if not name.endswith(".dist-info/WHEEL"):
                continue
            dist_info = name.rsplit("/", 1)[0]
            project, _, version = dist_info[: -len(".dist-info")].rpartition("-")
            project = canonicalize_name(project)
            tags, purelib = _wheel_metadata(archive.read(name).decode("utf-8"))
            parsed = set()
            for tag in tags:
                parsed |= set(parse_tag(tag))
            fits = bool(parsed & supported)
            shipped[project] = {"version": version, "tags": tags, "pure": purelib, "fits": fits}
            if not fits:
                problems.append(f"{project} {version}: wheel tags {', '.join(tags)} do not fit "
                                f"{target.describe()}")
            record = f"{dist_info}/RECORD"
            if record in name_set:
                for line in archive.read(record).decode("utf-8").splitlines():
                    owner_of[line.split(",", 1)[0]] = project

        for name in names:
            if not name.endswith(".so"):
                continue
            owner = owner_of.get(name)
            if owner is None:
                problems.append(f"{name}: a compiled module that no installed wheel owns")
                continue
            if shipped[owner]["pure"]:
                problems.append(f"{name}: compiled module in {owner}, whose wheel claims to be pure")
            problem = _extension_tag_problem(name, target)
            if problem:
                problems.append(problem)
            header = archive.open(name).read(20)
            machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None
            if machine != _ELF_MACHINES[target.machine]:
                problems.append(f"{name}: not an ELF object for {target.machine}")

        for package in expected_packages:
            if canonicalize_name(package) not in shipped:
                problems.append(f"locked package {package} is not in the zip")
    if problems:
        raise TargetError(f"{zip_path.name} does not fit {target.describe()}:\n  - "
                          + "\n  - ".join(problems))
    return shipped
