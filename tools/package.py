#!/usr/bin/env python3
"""Package the Chalice app for Terraform: ``build/<stage>/{deployment.zip,manifest.json}``.

``chalice package`` builds the deployment zip (reproducible: Chalice writes every
entry with a fixed timestamp and mode, so the same source gives the same bytes)
and a SAM template, ``sam.json``. We use nothing of that template's resources
except each function's settings: Terraform in ``terraform/`` owns every resource
(see docs/design-contract.md and the platform notes for why Chalice's own
Terraform output is unusable).

The manifest maps each Chalice function name to what Terraform needs::

    {
      "app_name": "broadcast", "stage": "dev", "chalice_version": "1.34.0",
      "zip": "deployment.zip", "zip_sha256": "...",
      "functions": {
        "websocket_connect": {"handler": "app.on_ws_connect", "runtime": "python3.11",
                              "memory_size": 256, "timeout": 10, "environment": {},
                              "trigger": "websocket", "websocket_route": "$connect"},
        "sweep": {..., "trigger": "schedule", "schedule": "rate(1 minute)"},
        ...
      }
    }

Handler strings, runtime, memory and timeout are read from ``sam.json``; the
Chalice names (``name=`` of each decorator) come from the app object, matched to
the template's logical ids the way Chalice derives them (``to_cfn_resource_name``).

Usage: ``python tools/package.py --stage dev [--project-dir .] [--out-dir build/dev]``
``chalice package`` needs a region (``AWS_DEFAULT_REGION``) but no credentials.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

MANIFEST_VERSION = 1
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
    if getattr(app, "routes", None):
        raise PackagingError(
            "the app declares REST routes (@app.route); terraform/ deploys only the "
            "WebSocket API: add a REST API module before adding routes"
        )
    functions: dict[str, dict] = {}

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
    zip_path: Path,
) -> dict:
    """Merge the app's declared functions with the settings in sam.json."""
    from chalice import __version__ as chalice_version
    from chalice.utils import to_cfn_resource_name

    by_logical_id = {to_cfn_resource_name(name): name for name in declared}
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
        entry["runtime"] = props["Runtime"]
        if "MemorySize" in props:
            entry["memory_size"] = int(props["MemorySize"])
        if "Timeout" in props:
            entry["timeout"] = int(props["Timeout"])
        if "ReservedConcurrentExecutions" in props:
            entry["reserved_concurrency"] = int(props["ReservedConcurrentExecutions"])
        entry["architectures"] = list(props.get("Architectures", ["x86_64"]))
        entry["environment"] = dict(
            props.get("Environment", {}).get("Variables", {})
        )
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
        "functions": functions,
    }


def run_chalice_package(project_dir: Path, stage: str, out_dir: Path) -> None:
    """What ``chalice package --stage <stage> <out_dir>`` does, with one difference.

    Chalice's IAM settings are forced to ``autogen_policy=True``: Terraform owns
    every role, so the policy Chalice would attach is discarded, and a stage with
    ``autogen_policy: false`` would otherwise need a ``.chalice/policy-<stage>.json``
    that nothing uses.
    """
    from chalice.cli.factory import CLIFactory

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    factory = CLIFactory(str(project_dir))
    try:
        config = factory.create_config_obj(stage, autogen_policy=True)
        packager = factory.create_app_packager(
            config, factory.create_package_options(), "cloudformation", "json", None
        )
        packager.package_app(config, str(out_dir), stage)
    except Exception as exc:  # chalice raises plain RuntimeError/ValueError subclasses
        raise PackagingError(f"chalice package --stage {stage} failed: {exc}") from exc


def package(project_dir: Path, stage: str, out_dir: Path) -> dict:
    """Run ``chalice package`` into ``out_dir`` and write ``out_dir/manifest.json``."""
    project_dir = project_dir.resolve()
    if not (project_dir / "app.py").is_file():
        raise PackagingError(f"no app.py in {project_dir}: nothing to package")
    config_path = project_dir / ".chalice" / "config.json"
    if not config_path.is_file():
        raise PackagingError(f"{config_path} is missing: chalice package needs it")
    app_name = json.loads(config_path.read_text())["app_name"]

    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Package into a fresh sibling directory and swap it in, so a failed run
    # never leaves a zip and a manifest from different sources side by side.
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        target = staging / "out"
        run_chalice_package(project_dir, stage, target)
        declared = chalice_functions(project_dir)
        manifest = build_manifest(
            app_name, stage, declared, read_sam_functions(target / SAM_NAME),
            target / ZIP_NAME,
        )
        (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        target.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", help="Chalice stage (default: dev)")
    parser.add_argument("--project-dir", type=Path, default=Path("."),
                        help="directory holding app.py and .chalice/ (default: .)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="output directory (default: <project-dir>/build/<stage>)")
    args = parser.parse_args(argv)
    out_dir = args.out_dir or args.project_dir / "build" / args.stage
    try:
        manifest = package(args.project_dir, args.stage, out_dir)
    except PackagingError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    print(f"packaged {len(manifest['functions'])} functions into {out_dir}/{ZIP_NAME} "
          f"(sha256 {manifest['zip_sha256'][:12]}...)")
    for name, fn in manifest["functions"].items():
        extra = fn.get("websocket_route") or fn.get("schedule") or fn["trigger"]
        print(f"  {name:<22} {fn['handler']:<24} {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
