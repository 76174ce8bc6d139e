"""Serve the stack Terraform applied to an emulator (``make run-deployed``).

``make run`` imports app.py and wires it the way the app says; this module runs
what was *deployed*, wired the way the emulator's API Gateway v2 and Lambda say:

- the WebSocket API's routes, integrations and authorizer (``apigatewayv2``)
  decide which function runs for ``$connect``, ``$default``, ``$disconnect``
  and which one authorizes;
- each function's handler, environment and timeout come from the emulator's
  Lambda (``get_function_configuration``), its code from the deployment zip
  whose SHA-256 equals the deployed ``CodeSha256``;
- the functions' resource policies (``lambda:GetPolicy``) must let API Gateway
  (per route and authorizer) and EventBridge (per rule) invoke them, or the call
  fails as in AWS (API Gateway answers 500);
- EventBridge rules (``events``) schedule their target functions.

Each function runs in its own worker processes (:mod:`local_stack.lambda_worker`)
with its own environment: the deployed variables, unchanged but for endpoints
(``AWS_ENDPOINT_URL`` to the emulator, ``AWS_ENDPOINT_URL_LAMBDA`` and
``MANAGEMENT_API_URL`` to the local gateway), each substitution logged. A wrong
handler, a missing variable, a route on the wrong function or a function its
caller may not invoke therefore fails here as it would in AWS.

:class:`DeployedApp` has the interface :class:`local_stack.gateway.Gateway`
expects of :class:`local_stack.lambda_runtime.LambdaApp`.
"""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fnmatch
import hashlib
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Tuple

import attrs

from .lambda_runtime import FunctionError, FunctionNotFound

log = logging.getLogger("local_stack.deployed")

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")
#: Execution environments per function at most (Lambda scales further; enough here).
MAX_WORKERS_PER_FUNCTION = 4
#: Variables Lambda sets in every execution environment (besides the function's own).
_RUNTIME_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME",
                      "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
                      "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT",
                      "_HANDLER", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "TZ", "LANG", "PATH")


class DeploymentError(Exception):
    """What was deployed cannot be served; the message says what to do."""


@attrs.frozen(kw_only=True)
class DeployedFunction:
    """One function as the emulator's Lambda has it."""

    name: str  # deployed name, e.g. broadcast-dev-websocket_connect
    arn: str
    handler_string: str
    runtime: str
    timeout: float
    memory_size: int
    environment: Dict[str, str]
    code_sha256: str
    schedule: Optional[str] = None
    schedule_rule_arn: Optional[str] = None


@attrs.frozen(kw_only=True)
class ApiWiring:
    """The WebSocket API's configuration, as its API Gateway has it."""

    api_id: str
    name: str
    stage: str
    routes: Dict[str, str]  # route key -> function ARN
    authorizer_id: Optional[str]
    authorizer_function_arn: Optional[str]


def function_arn_from_uri(uri: str) -> str:
    """The function ARN in an integration/authorizer URI
    (``arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations``)."""
    if "/functions/" not in uri:
        raise DeploymentError(f"integration URI {uri!r} does not name a Lambda function")
    return uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]


class Emulator:
    """Read-only view of what Terraform applied, through boto3 (test credentials)."""

    def __init__(self, endpoint: str, region: str):
        import boto3

        self.endpoint, self.region = endpoint, region
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                        region_name=region)
        self._client = lambda service: session.client(service, endpoint_url=endpoint)
        self.apigw = self._client("apigatewayv2")
        self.lam = self._client("lambda")
        self.events = self._client("events")

    def api(self, api_id: Optional[str] = None, stage: Optional[str] = None) -> ApiWiring:
        apis = [a for a in self.apigw.get_apis()["Items"] if a.get("ProtocolType") == "WEBSOCKET"]
        if api_id:
            apis = [a for a in apis if a["ApiId"] == api_id]
        if len(apis) != 1:
            found = ", ".join(f"{a['Name']} ({a['ApiId']})" for a in apis) or "none"
            raise DeploymentError(
                f"expected one WebSocket API at {self.endpoint}, found {found}: deploy with "
                f"`make deploy-local HOLD=1` first, or name it with --api-id")
        api = apis[0]
        stages = [s["StageName"] for s in self.apigw.get_stages(ApiId=api["ApiId"])["Items"]]
        if stage is None:
            if len(stages) != 1:
                raise DeploymentError(f"API {api['ApiId']} has stages {stages}: choose one with --stage")
            stage = stages[0]
        elif stage not in stages:
            raise DeploymentError(f"API {api['ApiId']} has no stage {stage!r} (it has {stages})")
        integrations = {i["IntegrationId"]: i for i in self.apigw.get_integrations(ApiId=api["ApiId"])["Items"]}
        routes, authorizer_id = {}, None
        for route in self.apigw.get_routes(ApiId=api["ApiId"])["Items"]:
            target = route.get("Target", "")
            integration = integrations.get(target.split("/", 1)[-1]) if target.startswith("integrations/") else None
            if integration is None:
                log.warning("route %s has no Lambda integration: API Gateway answers it with an error",
                            route["RouteKey"])
                continue
            routes[route["RouteKey"]] = function_arn_from_uri(integration["IntegrationUri"])
            if route.get("AuthorizationType") == "CUSTOM":
                if route["RouteKey"] != "$connect":
                    raise DeploymentError(f"route {route['RouteKey']} has an authorizer: WebSocket "
                                          f"APIs authorize $connect only")
                authorizer_id = route.get("AuthorizerId")
        authorizer_arn = None
        if authorizer_id:
            authorizer = self.apigw.get_authorizer(ApiId=api["ApiId"], AuthorizerId=authorizer_id)
            authorizer_arn = function_arn_from_uri(authorizer["AuthorizerUri"])
        return ApiWiring(api_id=api["ApiId"], name=api["Name"], stage=stage, routes=routes,
                         authorizer_id=authorizer_id, authorizer_function_arn=authorizer_arn)

    def function(self, name_or_arn: str) -> DeployedFunction:
        from botocore.exceptions import ClientError

        try:
            config = self.lam.get_function_configuration(FunctionName=name_or_arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise FunctionNotFound(name_or_arn) from None
            raise
        return DeployedFunction(
            name=config["FunctionName"], arn=config["FunctionArn"], handler_string=config["Handler"],
            runtime=config.get("Runtime", ""), timeout=float(config.get("Timeout", 3)),
            memory_size=int(config.get("MemorySize", 128)),
            environment=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"],
        )

    def resource_policy(self, function_name: str) -> List[dict]:
        from botocore.exceptions import ClientError

        try:
            policy = self.lam.get_policy(FunctionName=function_name)["Policy"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return []
            raise
        document = json.loads(policy) if isinstance(policy, str) else policy
        statements = document.get("Statement", [])
        return statements if isinstance(statements, list) else [statements]

    def schedules(self) -> List[Tuple[str, str, str]]:
        """``(rule ARN, schedule expression, target ARN)`` of every enabled scheduled rule."""
        found = []
        for rule in self.events.list_rules()["Rules"]:
            if rule.get("State") != "ENABLED" or not rule.get("ScheduleExpression"):
                continue
            for target in self.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                found.append((rule["Arn"], rule["ScheduleExpression"], target["Arn"]))
        return found


def may_invoke(statements: List[dict], principal: str, source_arn: str) -> bool:
    """Whether a resource policy lets ``principal`` invoke the function for ``source_arn``
    (Allow, ``lambda:InvokeFunction``, the service principal, ``AWS:SourceArn`` matching)."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if not any(fnmatch.fnmatchcase("lambda:InvokeFunction", a) for a in actions):
            continue
        who = statement.get("Principal", {})
        services = who.get("Service", []) if isinstance(who, dict) else who
        services = services if isinstance(services, list) else [services]
        if principal not in services and "*" not in services:
            continue
        conditions = statement.get("Condition", {})
        patterns = [v for op in ("ArnLike", "ArnEquals", "StringLike", "StringEquals")
                    for k, v in conditions.get(op, {}).items() if k.lower() == "aws:sourcearn"]
        flat = [p for v in patterns for p in (v if isinstance(v, list) else [v])]
        if not flat or any(fnmatch.fnmatchcase(source_arn, p.replace("[", "[[]")) for p in flat):
            return True
    return False


# ---------------------------------------------------------------------------
# The deployed code
# ---------------------------------------------------------------------------


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: the base64 of the zip's SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def _local_fit(tags: List[str]) -> bool:
    from packaging.tags import parse_tag, sys_tags

    supported = set(sys_tags())
    return any(set(parse_tag(tag)) & supported for tag in tags)


def prepare_code(zip_path: Path, expected_sha: str, cache_dir: Path) -> Tuple[Path, List[str]]:
    """Extract the deployed zip for this machine's Python; return (task root, notes).

    The zip must be the deployed one (``CodeSha256``). Its third-party packages
    with compiled modules built for another Python (a python3.13 package run on
    Python 3.11) cannot be imported here: those are left out of the task root so
    the same locked versions are imported from this interpreter's site-packages
    (.venv), and the notes say which.
    """
    data = zip_path.read_bytes()
    actual = code_sha256(data)
    if actual != expected_sha:
        raise DeploymentError(
            f"{zip_path} is not the deployed code (CodeSha256 {expected_sha}, the file's "
            f"{actual}): run `make deploy-local` again, or pass --package")
    root = cache_dir / hashlib.sha256(data).hexdigest()[:16]
    notes_file = root / ".local-notes.json"
    if notes_file.is_file():
        return root / "task", json.loads(notes_file.read_text())
    staging = cache_dir / f".{uuid.uuid4().hex}"
    task = staging / "task"
    task.mkdir(parents=True)
    notes: List[str] = []
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        skipped: Dict[str, str] = {}
        owned: Dict[str, str] = {}
        for name in names:
            if not name.endswith(".dist-info/WHEEL"):
                continue
            dist_info = name.rsplit("/", 1)[0]
            text = archive.read(name).decode()
            tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
            pure = "Root-Is-Purelib: true" in text
            project, _, version = dist_info[: -len(".dist-info")].rpartition("-")
            if pure or _local_fit(tags):
                continue
            skipped[project] = f"{version} ({', '.join(tags)})"
            for line in archive.read(f"{dist_info}/RECORD").decode().splitlines():
                owned[line.split(",", 1)[0]] = project
        for name in names:
            if name.endswith("/") or name in owned:
                continue
            target = task / PurePosixPath(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    if skipped:
        from importlib import metadata

        for project, shipped in sorted(skipped.items()):
            try:
                local = metadata.version(project)
            except metadata.PackageNotFoundError:
                raise DeploymentError(
                    f"the zip's {project} {shipped} cannot run on Python "
                    f"{sys.version_info.major}.{sys.version_info.minor} and .venv has no {project}: "
                    f"run `make venv`") from None
            mismatch = "" if shipped.startswith(local + " ") else f" (a different version: {local})"
            notes.append(f"{project} {shipped} is compiled for another Python than this "
                         f"{sys.version_info.major}.{sys.version_info.minor}: imported from .venv instead{mismatch}")
    (staging / ".local-notes.json").write_text(json.dumps(notes))
    if root.exists():
        shutil.rmtree(root)
    staging.rename(root)
    return root / "task", notes


# ---------------------------------------------------------------------------
# Execution environments
# ---------------------------------------------------------------------------


class Worker:
    """One execution environment: a :mod:`lambda_worker` process."""

    def __init__(self, function: DeployedFunction, task_root: Path, environment: Dict[str, str]):
        self.function = function
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(WORKER_SCRIPT), "--code", str(task_root),
             "--handler", function.handler_string, "--reply-fd", str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=environment, cwd=task_root, pass_fds=(write_fd,), text=True, bufsize=1,
        )
        os.close(write_fd)
        self._replies = os.fdopen(read_fd, "r")
        self._logs = threading.Thread(target=self._forward_logs, daemon=True,
                                      name=f"logs-{function.name}")
        self._logs.start()

    def _forward_logs(self) -> None:
        logger = logging.getLogger(f"lambda.{self.function.name}")
        for line in self.process.stdout:
            logger.info("%s", line.rstrip("\n"))

    def invoke(self, event: Any, timeout: float) -> Any:
        request_id = str(uuid.uuid4())
        deadline = time.time() + timeout
        self.process.stdin.write(json.dumps({"requestId": request_id, "event": event,
                                             "deadline": deadline}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self._replies], [], [], timeout)
        line = self._replies.readline() if ready else ""
        if not line:
            alive = self.process.poll() is None
            self.stop()
            if alive:
                raise FunctionError({"errorType": "Sandbox.Timedout", "requestId": request_id,
                                     "errorMessage": f"Task timed out after {timeout:.2f} seconds"})
            raise FunctionError({"errorType": "Runtime.ExitError", "requestId": request_id,
                                 "errorMessage": "RequestId: %s Error: Runtime exited" % request_id})
        answer = json.loads(line)
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer["result"]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self._replies):
            try:
                stream.close()
            except OSError:
                pass


class WorkerPool:
    """Execution environments of one function: reused when idle, added when busy."""

    def __init__(self, function: DeployedFunction, task_root: Path, environment: Dict[str, str]):
        self.function, self.task_root, self.environment = function, task_root, environment
        self._idle: List[Worker] = []
        self._count = 0
        self._lock = threading.Condition()
        self._closed = False

    def _take(self) -> Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise FunctionError({"errorType": "ServiceException",
                                         "errorMessage": "the local Lambda service is stopping"})
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    self._count -= 1
                if self._count < MAX_WORKERS_PER_FUNCTION:
                    self._count += 1
                    break
                self._lock.wait()
        try:
            return Worker(self.function, self.task_root, self.environment)
        except Exception:
            with self._lock:
                self._count -= 1
                self._lock.notify()
            raise

    def invoke(self, event: Any) -> Any:
        worker = self._take()
        try:
            return worker.invoke(event, self.function.timeout)
        finally:
            with self._lock:
                if worker.alive and not self._closed:
                    self._idle.append(worker)
                else:
                    self._count -= 1
                    worker.stop()
                self._lock.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for worker in idle:
            worker.stop()


# ---------------------------------------------------------------------------
# The app, as the gateway sees it
# ---------------------------------------------------------------------------


class DeployedApp:
    """The deployed functions behind :class:`local_stack.gateway.Gateway`."""

    def __init__(self, emulator: Emulator, wiring: ApiWiring, *, package: Path, cache_dir: Path,
                 gateway_url: str, account_id: str, max_workers: int = 64):
        self.emulator = emulator
        self.wiring = wiring
        self.package = package
        self.cache_dir = cache_dir
        self.gateway_url = gateway_url
        self.region = emulator.region
        self.account_id = account_id
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers,
                                                              thread_name_prefix="deployed")
        self._functions: Dict[str, DeployedFunction] = {}
        self._pools: Dict[str, WorkerPool] = {}
        self._policies: Dict[str, List[dict]] = {}
        self._lock = threading.Lock()
        self.routes: Dict[str, str] = {}
        self.notes: List[str] = []
        self.substitutions: Dict[str, Dict[str, Tuple[str, str]]] = {}

    # -- loading ---------------------------------------------------------------

    def load(self) -> None:
        """Read every function the API, its authorizer and the schedules name."""
        for route, arn in sorted(self.wiring.routes.items()):
            self.routes[route] = self._load(arn).name
        if self.wiring.authorizer_function_arn:
            self._load(self.wiring.authorizer_function_arn)
        for rule_arn, expression, target_arn in self.emulator.schedules():
            try:
                function = self._load(target_arn)
            except FunctionNotFound:
                log.warning("rule %s targets %s, which does not exist", rule_arn, target_arn)
                continue
            self._functions[function.name] = attrs.evolve(
                function, schedule=expression, schedule_rule_arn=rule_arn)

    def _load(self, name_or_arn: str) -> DeployedFunction:
        short = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
        with self._lock:
            if short in self._functions:
                return self._functions[short]
        function = self.emulator.function(name_or_arn)
        task_root, notes = prepare_code(self.package, function.code_sha256, self.cache_dir)
        environment, substitutions = self.environment_for(function, task_root)
        with self._lock:
            if function.name in self._functions:
                return self._functions[function.name]
            self._functions[function.name] = function
            self._pools[function.name] = WorkerPool(function, task_root, environment)
            self.substitutions[function.name] = substitutions
            for note in notes:
                if note not in self.notes:
                    self.notes.append(note)
        return function

    def environment_for(self, function: DeployedFunction, task_root: Path):
        """The function's environment: Lambda's variables, its deployed ones, and
        only endpoint variables replaced by local ones (returned, to be logged)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "en_US.UTF-8", "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": str(task_root), "_HANDLER": function.handler_string,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": function.name, "LOCAL_FUNCTION_ARN": function.arn,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
            # The role's credentials in AWS; the emulator takes anything.
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_EC2_METADATA_DISABLED": "true", "PYTHONDONTWRITEBYTECODE": "1",
        }
        deployed = dict(function.environment)
        local = {
            "AWS_ENDPOINT_URL": self.emulator.endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": self.gateway_url,
        }
        if "MANAGEMENT_API_URL" in deployed:
            local["MANAGEMENT_API_URL"] = f"{self.gateway_url}/{self.wiring.stage}"
        substitutions = {key: (deployed.get(key, "(unset)"), value) for key, value in local.items()}
        env.update(deployed)
        env.update(local)
        return env, substitutions

    # -- the LambdaApp interface -----------------------------------------------

    @property
    def functions(self) -> Dict[str, DeployedFunction]:
        return dict(self._functions)

    def route_function(self, route_key: str) -> Optional[DeployedFunction]:
        name = self.routes.get(route_key)
        return self._functions[name] if name else None

    def connect_authorizer(self) -> Optional[DeployedFunction]:
        arn = self.wiring.authorizer_function_arn
        return self._load(arn) if arn else None

    def function(self, function_name: str) -> DeployedFunction:
        """Any function of the emulator's Lambda, by name or ARN (the Invoke API)."""
        name = function_name
        if name.startswith("arn:"):
            parts = name.split(":")
            if len(parts) < 7 or parts[5] != "function":
                raise FunctionNotFound(function_name)
            name = parts[6]
        elif ":" in name:
            name = name.split(":", 1)[0]
        return self._load(name)

    def scheduled(self) -> List[DeployedFunction]:
        return [f for f in self._functions.values() if f.schedule]

    def deployed_name(self, name: str) -> str:
        return name

    def invoke_sync(self, function: DeployedFunction, event: Any) -> Any:
        caller = self._caller(event)
        if caller is not None:
            principal, source_arn, what = caller
            if not self._may_invoke(function, principal, source_arn):
                log.error("%s may not invoke %s as %s: its resource policy has no "
                          "lambda:InvokeFunction for %s (AWS: API Gateway answers 500, "
                          "EventBridge drops the event)", principal, function.name, what, source_arn)
                raise FunctionError({"errorType": "AccessDeniedException",
                                     "errorMessage": "Invalid permissions on Lambda function"})
        return self._pools[function.name].invoke(json.loads(json.dumps(event)))

    async def invoke(self, function: DeployedFunction, event: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.invoke_sync, function, event)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self.executor.shutdown(wait=True, cancel_futures=True)

    # -- resource policies ------------------------------------------------------

    def _caller(self, event: Any) -> Optional[Tuple[str, str, str]]:
        """Which service invokes with this event, for which source ARN (None: the Invoke API)."""
        if not isinstance(event, dict):
            return None
        prefix = f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.wiring.api_id}"
        if event.get("type") == "REQUEST" and "methodArn" in event:
            return ("apigateway.amazonaws.com", f"{prefix}/authorizers/{self.wiring.authorizer_id}",
                    "the API's authorizer")
        route = (event.get("requestContext") or {}).get("routeKey")
        if route:
            return ("apigateway.amazonaws.com", f"{prefix}/{self.wiring.stage}/{route}",
                    f"the {route} integration")
        if event.get("source") == "aws.events" and event.get("resources"):
            return ("events.amazonaws.com", event["resources"][0], "a scheduled rule's target")
        return None

    def _may_invoke(self, function: DeployedFunction, principal: str, source_arn: str) -> bool:
        with self._lock:
            statements = self._policies.get(function.name)
        if statements is None:
            statements = self.emulator.resource_policy(function.name)
            with self._lock:
                self._policies[function.name] = statements
        return may_invoke(statements, principal, source_arn)
