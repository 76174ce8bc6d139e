#!/usr/bin/env python3
"""`make deploy-local`: apply the root module to an emulator, quietly.

One progress line per step and a summary; terraform's own output goes to
``build/local/<stage>/deploy.log``. The emulator is ``AWS_ENDPOINT_URL`` if set
(it must answer), else whatever answers at http://127.0.0.1:4566 (LocalStack, a
moto_server), else an embedded moto started for the occasion (stopped at the
end unless ``--hold``). Terraform runs on a copy of terraform/ under
``build/local/<stage>/terraform`` with its own local state there (no ``-state``
flag, which Terraform keeps only for the legacy local backend), test
credentials, ``aws_max_retries = 3`` (transient errors retried, not minutes of them) and ``emulator_endpoint_url``; the outputs
are written to ``build/local/<stage>/outputs.json`` for ``make run-deployed``
and ``make speaker-user LOCAL=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local_stack.moto_server import (  # noqa: E402  (the one way the project starts moto)
    DEFAULT_PORT, MOTO_HOST as DEFAULT_HOST, MotoPortInUse, MotoServer, endpoint_answers,
    port_in_use, test_environment,
)

# Step 1, the package, is `tools/package.py --quiet` (make deploy-local runs it first).
TOTAL_STEPS = 4
_KEEP = {".terraform", "terraform.tfstate", "terraform.tfstate.backup", ".terraform.lock.hcl"}


def step(number: int, total: int, text: str) -> None:
    print(f"[{number}/{total}] {text}", flush=True)


def sync_tree(source: Path, dest: Path) -> None:
    """dest = a fresh copy of terraform/, keeping its provider dir, lock and state."""
    dest.mkdir(parents=True, exist_ok=True)
    for child in dest.iterdir():
        if child.name not in _KEEP:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in source.iterdir():
        if child.name in _KEEP or child.name == "terraform.tfstate.d" or child.suffix == ".tfplan":
            continue
        if child.is_dir():
            shutil.copytree(child, dest / child.name,
                            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        else:
            shutil.copy2(child, dest / child.name)


def run_logged(command, env, log, cwd) -> int:
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    return subprocess.call(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def deploy(args, endpoint: str, embedded: bool) -> int:
    work = Path(args.work_dir).resolve()
    tree = work / "terraform"
    log_path = work / "deploy.log"
    work.mkdir(parents=True, exist_ok=True)
    env = test_environment(dict(os.environ), endpoint)
    env.update(TF_IN_AUTOMATION="1", TF_INPUT="0", CHECKPOINT_DISABLE="1")
    total = TOTAL_STEPS
    sync_tree(ROOT / "terraform", tree)
    if embedded:  # a fresh emulator: state from a past run describes nothing
        for stale in ("terraform.tfstate", "terraform.tfstate.backup"):
            (tree / stale).unlink(missing_ok=True)
    tf = [args.terraform]
    variables = [f"-var=stage={args.stage}", f"-var=aws_region={env['AWS_DEFAULT_REGION']}",
                 f"-var=manifest_path={Path(args.manifest).resolve()}", "-var=aws_max_retries=3",
                 f"-var=emulator_endpoint_url={endpoint}",
                 f"-var=lambda_runtime={args.runtime}", f"-var=lambda_architecture={args.arch}"]
    variables += [f"-var-file={Path(f).resolve()}" for f in args.var_file]
    with open(log_path, "w") as log:
        started = time.monotonic()
        init = tf + ["init", "-input=false", "-no-color"]
        if args.plugin_dir:
            init.append(f"-plugin-dir={args.plugin_dir}")
        if run_logged(init, env, log, tree) != 0:
            print(f"terraform init failed: see {log_path}", file=sys.stderr)
            return 1
        step(3, total, f"terraform init ({time.monotonic() - started:.0f} s)")
        started = time.monotonic()
        code = run_logged(tf + ["apply", "-input=false", "-auto-approve", "-no-color", *variables],
                          env, log, tree)
        if code != 0:
            print(f"terraform apply failed: see {log_path} (the end of it names the resource)",
                  file=sys.stderr)
            return code
        outputs_raw = subprocess.run(tf + ["output", "-json"], env=env, cwd=tree,
                                     capture_output=True, text=True, check=True).stdout
    state = json.loads((tree / "terraform.tfstate").read_text())
    resources = sum(len(r.get("instances", [])) for r in state.get("resources", [])
                    if r.get("mode") == "managed")
    step(4, total, f"terraform apply: {resources} resources in {time.monotonic() - started:.0f} s "
                   f"(full log: {log_path})")
    outputs_file = work / "outputs.json"
    outputs_file.write_text(outputs_raw)
    outputs = {k: v["value"] for k, v in json.loads(outputs_raw).items()}
    print(f"deployed {args.stage} to {endpoint}: API {outputs['api_id']}, "
          f"{len(outputs['function_names'])} functions ({outputs['lambda_runtime']}), "
          f"tables {', '.join(outputs['table_names'].values())}")
    print(f"  outputs: {outputs_file}")
    print(f"  emulator (AWS APIs): {endpoint}")
    if outputs.get("jwks_url"):
        print(f"  speaker keys (JWKS): {outputs['jwks_url']}")
    print(f"  {outputs['websocket_url']} exists only in AWS: the emulator has no WebSocket data plane.")
    print(f"  Serve this stack: `make run-deployed` (ws://127.0.0.1:8000/{outputs['api_stage_name']}); "
          f"speakers: `make speaker-user LOCAL=1 EMAIL=...`" +
          ("" if not embedded or args.hold else
           " -- with HOLD=1, since the embedded moto stops when this command ends"))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--var-file", action="append", default=[])
    parser.add_argument("--runtime", default="python3.13")
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--terraform", default="terraform")
    parser.add_argument("--plugin-dir", default=None)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args(argv)

    given = os.environ.get("AWS_ENDPOINT_URL")
    default = f"http://{DEFAULT_HOST}:{args.port}"
    if given:
        if not endpoint_answers(given):
            print(f"deploy-local: nothing answers at AWS_ENDPOINT_URL={given}", file=sys.stderr)
            return 2
        step(2, TOTAL_STEPS, f"emulator: AWS_ENDPOINT_URL={given}")
        return deploy(args, given, embedded=False)
    if endpoint_answers(default):
        step(2, TOTAL_STEPS, f"emulator: the one already running at {default}")
        return deploy(args, default, embedded=False)
    if port_in_use(DEFAULT_HOST, args.port):
        print(f"deploy-local: {DEFAULT_HOST}:{args.port} is taken by something that is not an "
              f"HTTP endpoint; set AWS_ENDPOINT_URL", file=sys.stderr)
        return 2
    server = MotoServer(args.port)
    try:
        server.start()
    except MotoPortInUse as exc:
        print(f"deploy-local: {exc.strerror}", file=sys.stderr)
        return 2
    with server:  # the same patched server `make run` starts: the functions call it concurrently
        step(2, TOTAL_STEPS, f"emulator: embedded moto on {server.url}")
        code = deploy(args, server.url, embedded=True)
        if code == 0 and args.hold:
            print(f"moto keeps the stack on {server.url} until Ctrl-C; in another terminal: "
                  f"make run-deployed", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return code


if __name__ == "__main__":
    sys.exit(main())
