"""Each function's IAM role grants exactly the AWS calls its code makes.

The functional scenarios (tests/functional) run again in a child pytest with
tests/terraform/iam_recorder.py, which records, per Lambda handler, every AWS
API call as the IAM action and resource it needs. The roles Terraform applied
(to moto, from the app's real package) must grant all of it (nothing missing:
a call AWS would refuse with AccessDenied) and nothing more (least privilege).
When the code changes its calls (batching deletes, a new index...), this test
says which grant to add or remove in terraform/main.tf's ``permissions``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.terraform.tfsupport import ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

# The table names the functional scenarios use (chalicelib.config defaults).
SCENARIO_TABLES = {"sessions": "Sessions", "connections": "Connections", "rate_limits": "RateLimits"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """{function: {(action, resource)}} from the functional scenarios."""
    path = tmp_path_factory.mktemp("iam") / "calls.json"
    env = {**os.environ, "IAM_RECORD_PATH": str(path)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/functional", "-q", "-p", "no:cacheprovider",
         "-p", "tests.terraform.iam_recorder",
         # The races' threads hammer one moto server: slow, and no call of theirs
         # is missing from the other scenarios.
         "--deselect", "tests/functional/test_concurrency.py",
         # The capacity meter prices each write by reading the item before and after
         # with a client of its own, inside the handler's call: reads of the
         # measurement, not of the code (whose calls the other scenarios make).
         "--deselect", "tests/functional/test_capacity.py",
         # Random input, every message refused or routine: 30 s of calls the other
         # scenarios already make (compared when this was added: the same set).
         "--deselect", "tests/functional/test_attack_fuzz.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {name: {tuple(call) for call in calls} for name, calls in json.loads(path.read_text()).items()}


def granted_calls(stack, function: str) -> set:
    """The applied role's grants in the recorder's terms (logs left out: Lambda writes them)."""
    iam = stack.client("iam")
    prefix = "broadcast-dev-"
    table_roles = {name: SCENARIO_TABLES[role] for role, name in stack.outputs["table_names"].items()}
    policy = iam.get_role_policy(RoleName=f"{prefix}{function}-role", PolicyName="least-privilege")["PolicyDocument"]
    if isinstance(policy, str):
        policy = json.loads(policy)
    grants = set()
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            if action.startswith("logs:"):
                continue
            for resource in resources:
                if action.startswith("dynamodb:"):
                    table_part = resource.split(":table/", 1)[1]
                    table, _, index = table_part.partition("/index/")
                    name = table_roles[table] + (f"/index/{index}" if index else "")
                elif action == "execute-api:ManageConnections":
                    name = resource.split(f"/{stack.outputs['api_stage_name']}/", 1)[1].split("/", 1)[0]
                elif action == "lambda:InvokeFunction":
                    name = resource.rsplit(":function:", 1)[1].removeprefix(prefix)
                else:
                    name = resource
                grants.add((action, name))
    return grants


class TestRolesFollowTheCode:
    def test_every_function_is_exercised(self, recorded, applied_stack):
        """The scenarios run every function that makes AWS calls (the authorizer makes none)."""
        functions = set(applied_stack.package.functions)
        assert set(recorded) == functions - {"authorizer"}

    def test_no_call_is_missing_and_nothing_more_is_granted(self, recorded, applied_stack):
        """Per function: granted == called (DynamoDB action per table/index,
        @connections verbs, invoked functions)."""
        problems = []
        for function in applied_stack.package.functions:
            # Kinesis is granted only with audio_stream_enabled (not this stack);
            # the plan-level test audio_stream_switch checks that grant.
            called = {c for c in recorded.get(function, set()) if not c[0].startswith("kinesis:")}
            granted = granted_calls(applied_stack, function)
            for action, resource in sorted(called - granted):
                problems.append(f"{function}: calls {action} on {resource}, which its role does not grant")
            for action, resource in sorted(granted - called):
                problems.append(f"{function}: is granted {action} on {resource}, which its code never calls")
        assert not problems, "\n".join(problems)

    def test_only_the_audio_path_writes_to_kinesis(self, recorded):
        """kinesis:PutRecord is websocket_message's alone (what the audio_stream plan grants)."""
        writers = {f for f, calls in recorded.items() if any(a.startswith("kinesis:") for a, _ in calls)}
        assert writers == {"websocket_message"}
        assert {a for a, _ in recorded["websocket_message"] if a.startswith("kinesis:")} == {"kinesis:PutRecord"}

    def test_every_grant_is_inside_the_permissions_boundary(self, applied_stack):
        """With role_permissions_boundary_arn set (as deployer-policy.json requires), the
        effective permissions are the intersection: each grant must be inside the boundary."""
        import fnmatch

        boundary = json.loads((ROOT / "terraform" / "permissions-boundary.json").read_text())
        iam = applied_stack.client("iam")
        outside = []
        for function in applied_stack.package.functions:
            policy = iam.get_role_policy(RoleName=f"broadcast-dev-{function}-role",
                                         PolicyName="least-privilege")["PolicyDocument"]
            policy = json.loads(policy) if isinstance(policy, str) else policy
            for statement in policy["Statement"]:
                for action in statement["Action"]:
                    for resource in statement["Resource"]:
                        if not any(fnmatch.fnmatchcase(action, a) and
                                   any(fnmatch.fnmatchcase(resource, r) for r in b["Resource"])
                                   for b in boundary["Statement"] for a in b["Action"]):
                            outside.append(f"{function}: {action} on {resource}")
        assert not outside, "\n".join(outside)
