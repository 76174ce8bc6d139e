#!/usr/bin/env python3
"""Package the Chalice app for Terraform: ``build/<stage>/{deployment.zip,manifest.json}``.

The zip is built for the Lambda runtime we choose (``--runtime``, ``--arch``;
default python3.13 on x86_64), whatever Python runs this script:

1. ``chalice package`` on a copy of the app *without* requirements: the app
   code (``app.py``, ``chalicelib/``) and Chalice's runtime module, and the
   handler names and settings (``sam.json``). Chalice would otherwise package
   third-party code for the builder's interpreter, and "continue" without a
   dependency it cannot find.
2. The locked third-party wheels (``requirements.txt``: pinned, hashed) for the
   target: downloaded into a wheelhouse (``build/wheelhouse/<runtime>-<arch>``;
   ``--offline`` uses only what is there), checked there (every locked package
   must have a wheel matching a locked hash and fitting the target, or the build
   stops naming the package and the target), then installed with
   ``pip install --target --no-index --require-hashes``.
3. One reproducible zip: sorted entries, fixed timestamps and modes, no
   ``__pycache__`` or ``.pyc``.
4. :func:`tools.lambda_target.verify_package`: every compiled module comes from
   a wheel whose tags fit the target's Python, ABI, architecture and glibc,
   cryptography's Rust binding is there, no tests or dev-only code ship.

boto3 and botocore are not shipped: the Lambda runtime provides them.

The manifest maps each Chalice function name to what Terraform needs, and
records the target (Terraform refuses a manifest built for another runtime or
architecture at plan time)::

    {
      "app_name": "broadcast", "stage": "dev", "chalice_version": "1.34.0",
      "zip": "deployment.zip", "zip_sha256": "...", "zip_size": 5000000,
      "target": {"runtime": "python3.13", "architecture": "x86_64", ...},
      "packages": {"cryptography": "50.0.2", ...},
      "functions": {
        "websocket_connect": {"handler": "app.on_ws_connect", "runtime": "python3.13",
                              "architectures": ["x86_64"], "memory_size": 256,
                              "timeout": 20, "environment": {},
                              "trigger": "websocket", "websocket_route": "$connect"},
        "sweep": {..., "trigger": "schedule", "schedule": "rate(1 minute)"},
        ...
      }
    }

Handler strings, memory and timeout are read from ``sam.json``; the Chalice
names (``name=`` of each decorator) come from the app object, matched to the
template's logical ids the way Chalice derives them (``to_cfn_resource_name``).

Usage: ``python tools/package.py --stage dev [--runtime python3.13] [--arch x86_64]
[--project-dir .] [--out-dir build/dev] [--offline]``. ``chalice package`` needs a
region (``AWS_DEFAULT_REGION``) but no credentials.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.lambda_target import (  # noqa: E402
    Target, TargetError, missing_wheels, read_lock, verify_package, write_target_lock,
)

MANIFEST_VERSION = 2
ZIP_NAME = "deployment.zip"
SAM_NAME = "sam.json"
MANIFEST_NAME = "manifest.json"
FUNCTION_TYPE = "AWS::Serverless::Function"
WEBSOCKET_FUNCTION_NAMES = {
    "$connect": "websocket_connect",
    "$disconnect": "websocket_disconnect",
    "$default": "websocket_message",
}


class PackagingError(Exception):
    """The app cannot be packaged into something our Terraform can deploy."""


def chalice_functions(project_dir: Path) -> dict[str, dict]:
    """Return ``{chalice_name: {"handler", "trigger", ...}}`` as the app declares them."""
    from chalice.cli.factory import CLIFactory

    app = CLIFactory(str(project_dir)).load_chalice_app()
    functions: dict[str, dict] = {}
    if getattr(app, "routes", None):
        # Chalice serves every @app.route from one function, api_handler (handler
        # app.app; logical id APIHandler in sam.json); terraform/modules/health_api
        # puts it behind its own HTTP API.
        functions["api_handler"] = {"handler": "app.app", "trigger": "http"}

    def add(name: str, handler: str, **trigger: object) -> None:
        if name in functions:
            raise PackagingError(f"two functions are named {name!r}")
        functions[name] = {"handler": handler, **trigger}

    for fn in app.pure_lambda_functions:
        add(fn.name, fn.handler_string, trigger="invoke")
    for route_key, cfg in sorted(app.websocket_handlers.items()):
        # Chalice names WebSocket functions by route, whatever the decorator's
        # name= says (chalice/deploy/appgraph.py); every other key is $default.
        name = WEBSOCKET_FUNCTION_NAMES.get(route_key, "websocket_message")
        add(name, cfg.handler_string, trigger="websocket", websocket_route=route_key)
    for source in app.event_sources:
        schedule = getattr(source, "schedule_expression", None)
        if schedule is None:
            raise PackagingError(
                f"function {source.name!r} has a {type(source).__name__} trigger; "
                "terraform/ wires only @app.schedule event sources"
            )
        if not isinstance(schedule, str):
            schedule = schedule.to_string()
        add(source.name, source.handler_string, trigger="schedule", schedule=schedule)
    return functions


def read_sam_functions(sam_path: Path) -> dict[str, dict]:
    """Return ``{logical_id: Properties}`` of every function in Chalice's sam.json."""
    template = json.loads(sam_path.read_text())
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == FUNCTION_TYPE
    }


def build_manifest(
    app_name: str, stage: str, declared: dict[str, dict], sam_functions: dict[str, dict],
    zip_path: Path, target: Target, packages: Dict[str, str],
) -> dict:
    """Merge the app's declared functions with the settings in sam.json."""
    from chalice import __version__ as chalice_version
    from chalice.utils import to_cfn_resource_name

    by_logical_id = {("APIHandler" if name == "api_handler" else to_cfn_resource_name(name)): name
                     for name in declared}
    unknown = sorted(set(sam_functions) - set(by_logical_id))
    missing = sorted(set(by_logical_id) - set(sam_functions))
    if unknown or missing:
        raise PackagingError(
            f"sam.json and the app disagree: functions only in sam.json {unknown}, "
            f"only in the app {missing}"
        )

    functions = {}
    for logical_id, props in sorted(sam_functions.items()):
        name = by_logical_id[logical_id]
        entry = dict(declared[name])
        if props.get("Handler") != entry["handler"]:
            raise PackagingError(
                f"function {name!r}: sam.json has handler {props.get('Handler')!r}, "
                f"the app declares {entry['handler']!r}"
            )
        # Chalice writes the builder's interpreter here; the zip is built for the target.
        entry["runtime"] = target.runtime
        if "MemorySize" in props:
            entry["memory_size"] = int(props["MemorySize"])
        if "Timeout" in props:
            entry["timeout"] = int(props["Timeout"])
        if "ReservedConcurrentExecutions" in props:
            entry["reserved_concurrency"] = int(props["ReservedConcurrentExecutions"])
        entry["architectures"] = [target.architecture]
        entry["environment"] = dict(
            props.get("Environment", {}).get("Variables", {})
        )
        if props.get("Architectures", ["x86_64"]) != ["x86_64"]:
            raise PackagingError(
                f"function {name!r} sets lambda_architecture in .chalice/config.json: "
                "choose the architecture with `make package ARCH=...` instead")
        for unsupported in ("Layers", "VpcConfig"):
            if unsupported in props:
                raise PackagingError(
                    f"function {name!r} sets {unsupported} in .chalice/config.json; "
                    "terraform/modules/functions does not deploy it yet"
                )
        functions[name] = dict(sorted(entry.items()))

    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return {
        "manifest_version": MANIFEST_VERSION,
        "app_name": app_name,
        "stage": stage,
        "chalice_version": chalice_version,
        "zip": zip_path.name,
        "zip_sha256": digest,
        "zip_size": zip_path.stat().st_size,
        "target": target.to_dict(),
        "packages": dict(sorted(packages.items())),
        "functions": functions,
    }


# What `chalice package` needs of the project: the app and its config. No
# requirements.txt, so Chalice packages the app code alone.
APP_SOURCES = ("app.py", "chalicelib", ".chalice", "vendor")
_GENERATED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "deployments", "deployed")
# The zip's fixed timestamp (the earliest a zip can hold) and modes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644


def copy_app_sources(project_dir: Path, dest: Path) -> Path:
    """A copy of the project holding only what ``chalice package`` must see."""
    dest.mkdir(parents=True)
    for name in APP_SOURCES:
        source = project_dir / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=_GENERATED)
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


def run_chalice_package(project_dir: Path, stage: str, out_dir: Path) -> None:
    """What ``chalice package --stage <stage> <out_dir>`` does, with one difference.

    Chalice's IAM settings are forced to ``autogen_policy=True``: Terraform owns
    every role, so the policy Chalice would attach is discarded, and a stage with
    ``autogen_policy: false`` would otherwise need a ``.chalice/policy-<stage>.json``
    that nothing uses.
    """
    from chalice.cli.factory import CLIFactory

    import contextlib
    import io

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        # Chalice's UI says "Creating deployment package."; our summary says more.
        with contextlib.redirect_stdout(io.StringIO()):
            factory = CLIFactory(str(project_dir))
            config = factory.create_config_obj(stage, autogen_policy=True)
            packager = factory.create_app_packager(
                config, factory.create_package_options(), "cloudformation", "json", None
            )
            packager.package_app(config, str(out_dir), stage)
    except Exception as exc:  # chalice raises plain RuntimeError/ValueError subclasses
        raise PackagingError(f"chalice package --stage {stage} failed: {exc}") from exc


def _missing_message(missing: List[str], target: Target, wheelhouse: Path) -> str:
    return (f"no wheel for {target.describe()} of: {', '.join(missing)} "
            f"(in {wheelhouse}, matching the hashes of the lock). The functions would fail "
            f"to import without it, so nothing was packaged. Pin a version that publishes a "
            f"manylinux wheel for this runtime (`make requirements`), or choose another "
            f"RUNTIME/ARCH.")


def download_wheels(lock: Path, wheelhouse: Path, target: Target) -> None:
    """``pip download`` the target's wheels of ``lock`` into ``wheelhouse``."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--require-hashes", "--dest", str(wheelhouse), "-r", str(lock),
               *target.pip_arguments()]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        missing = re.findall(r"No matching distribution found for (\S+)", result.stderr)
        if missing:
            raise PackagingError(_missing_message(missing, target, wheelhouse))
        raise PackagingError(f"pip download of the target's wheels failed:\n{result.stderr.strip()}")


def install_wheels(lock: Path, wheelhouse: Path, site: Path, target: Target) -> None:
    """Install the locked wheels from ``wheelhouse`` (never the network) into ``site``."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-index", "--find-links", str(wheelhouse), "--no-deps", "--require-hashes",
               "--no-compile", "--target", str(site), "-r", str(lock), *target.pip_arguments()]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackagingError(f"pip install of the target's wheels failed:\n{result.stderr.strip()}")


def _site_files(site: Path) -> Iterable[tuple]:
    for path in sorted(site.rglob("*")):
        relative = PurePosixPath(path.relative_to(site).as_posix())
        if path.is_dir() or relative.parts[0] == "bin":  # console scripts: not importable
            continue
        yield str(relative), path.read_bytes()


def write_zip(zip_path: Path, entries: Dict[str, bytes]) -> None:
    """One zip, the same bytes for the same entries: sorted, fixed dates and modes."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.create_system = 3  # unix: the mode below is meaningful
            info.external_attr = FILE_MODE << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=9)


def assemble_zip(app_zip: Path, site: Path, zip_path: Path) -> None:
    entries: Dict[str, bytes] = {}
    with zipfile.ZipFile(app_zip) as archive:
        for name in archive.namelist():
            parts = PurePosixPath(name).parts
            if name.endswith("/") or "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
                continue
            entries[name] = archive.read(name)
    for name, data in _site_files(site):
        if name in entries:
            raise PackagingError(f"{name} is both app code and part of a third-party package")
        entries[name] = data
    write_zip(zip_path, entries)


def package(project_dir: Path, stage: str, out_dir: Path, target: Target = Target(),
            requirements: Path | None = None, wheelhouse: Path | None = None,
            offline: bool = False) -> dict:
    """Build ``out_dir/deployment.zip`` for ``target`` and write ``out_dir/manifest.json``."""
    project_dir = project_dir.resolve()
    if not (project_dir / "app.py").is_file():
        raise PackagingError(f"no app.py in {project_dir}: nothing to package")
    config_path = project_dir / ".chalice" / "config.json"
    if not config_path.is_file():
        raise PackagingError(f"{config_path} is missing: chalice package needs it")
    app_name = json.loads(config_path.read_text())["app_name"]
    requirements = (requirements or project_dir / "requirements.txt").resolve()
    wheelhouse = (wheelhouse or default_wheelhouse(project_dir, target)).resolve()

    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Package into a fresh sibling directory and swap it in, so a failed run
    # never leaves a zip and a manifest from different sources side by side.
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        locked = read_lock(requirements, target)
        target_lock = write_target_lock(locked, staging / "target-requirements.txt")
        if not offline:
            download_wheels(target_lock, wheelhouse, target)
        missing = missing_wheels(locked, wheelhouse, target)
        if missing:
            raise PackagingError(_missing_message(missing, target, wheelhouse))
        install_wheels(target_lock, wheelhouse, staging / "site", target)

        app_copy = copy_app_sources(project_dir, staging / "app")
        chalice_out = staging / "chalice"
        run_chalice_package(app_copy, stage, chalice_out)
        declared = chalice_functions(app_copy)

        result = staging / "out"
        result.mkdir()
        assemble_zip(chalice_out / ZIP_NAME, staging / "site", result / ZIP_NAME)
        shipped = verify_package(result / ZIP_NAME, target, [r.name for r in locked])
        shutil.copyfile(chalice_out / SAM_NAME, result / SAM_NAME)
        manifest = build_manifest(
            app_name, stage, declared, read_sam_functions(result / SAM_NAME),
            result / ZIP_NAME, target, {name: info["version"] for name, info in shipped.items()},
        )
        (result / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        result.rename(out_dir)
    except TargetError as exc:
        raise PackagingError(str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def default_wheelhouse(project_dir: Path, target: Target) -> Path:
    return project_dir / "build" / "wheelhouse" / f"{target.runtime}-{target.architecture}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", help="Chalice stage (default: dev)")
    parser.add_argument("--runtime", default="python3.13",
                        help="Lambda runtime to build for (python3.12, python3.13; default python3.13)")
    parser.add_argument("--arch", default="x86_64",
                        help="Lambda architecture to build for (x86_64, arm64; default x86_64)")
    parser.add_argument("--project-dir", type=Path, default=Path("."),
                        help="directory holding app.py and .chalice/ (default: .)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="output directory (default: <project-dir>/build/<stage>)")
    parser.add_argument("--requirements", type=Path, default=None,
                        help="hash-locked requirements to ship (default: <project-dir>/requirements.txt)")
    parser.add_argument("--wheelhouse", type=Path, default=None,
                        help="where the target's wheels are kept "
                             "(default: <project-dir>/build/wheelhouse/<runtime>-<arch>)")
    parser.add_argument("--offline", action="store_true",
                        help="use only the wheels already in the wheelhouse (no download)")
    parser.add_argument("--download-only", action="store_true",
                        help="fill the wheelhouse for the target, build nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="one summary line, without the table of functions")
    args = parser.parse_args(argv)
    out_dir = args.out_dir or args.project_dir / "build" / args.stage
    try:
        target = Target(args.runtime, args.arch)
        if args.download_only:
            return _download_only(args, target)
        manifest = package(args.project_dir, args.stage, out_dir, target,
                           requirements=args.requirements, wheelhouse=args.wheelhouse,
                           offline=args.offline)
    except (PackagingError, TargetError) as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    packages = ", ".join(f"{name} {version}" for name, version in manifest["packages"].items())
    prefix = "[1/4] package: " if args.quiet else ""  # make deploy-local's first step
    print(f"{prefix}packaged {len(manifest['functions'])} functions for {target.describe()} into "
          f"{out_dir}/{ZIP_NAME} ({manifest['zip_size'] / 1e6:.1f} MB, sha256 "
          f"{manifest['zip_sha256'][:12]}...); checked: {packages}")
    for name, fn in manifest["functions"].items() if not args.quiet else ():
        extra = fn.get("websocket_route") or fn.get("schedule") or fn["trigger"]
        print(f"  {name:<22} {fn['handler']:<24} {extra:<16} timeout {fn.get('timeout', '-')} s")
    return 0


def _download_only(args, target: Target) -> int:
    project_dir = args.project_dir.resolve()
    wheelhouse = (args.wheelhouse or default_wheelhouse(project_dir, target)).resolve()
    requirements = (args.requirements or project_dir / "requirements.txt").resolve()
    locked = read_lock(requirements, target)
    with tempfile.TemporaryDirectory() as tmp:
        download_wheels(write_target_lock(locked, Path(tmp) / "lock.txt"), wheelhouse, target)
    missing = missing_wheels(locked, wheelhouse, target)
    if missing:
        raise PackagingError(_missing_message(missing, target, wheelhouse))
    print(f"wheelhouse for {target.describe()}: {wheelhouse} ({len(locked)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
