"""A real ``terraform apply`` of the root module against an embedded moto server,
checked through boto3, then a second plan that must show no changes, then
``terraform destroy``. moto cannot run Lambda code (no Docker): this proves the
resources apply and are wired; test_run_deployed.py runs the functions.

The tests of this module share the session's applied stack (conftest.py) and
run in file order; the last one destroys it, so this module runs after every
other user of the stack (pytest takes tests/terraform's files in name order).
"""

from __future__ import annotations

import json

import pytest

from tests.terraform.tfsupport import REGION

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

ROUTES = {"$connect", "$default", "$disconnect"}


def _variables_the_app_reads() -> set:
    """Every variable chalicelib.config.Config.from_environ looks up."""
    from chalicelib.config import Config

    class Recorder(dict):
        names = set()

        def get(self, key, default=None):
            self.names.add(key)
            return default

    recorder = Recorder()
    Config.from_environ(recorder)
    return recorder.names


# Set only when the Terraform variable is non-empty, so the app's default applies.
OPTIONAL_ENVIRONMENT = {"SUPPORTED_LANGUAGES", "TOKEN_ISSUER", "TOKEN_AUDIENCE", "JWKS_URL"}
CONTRACT_ENVIRONMENT = _variables_the_app_reads() - OPTIONAL_ENVIRONMENT


@pytest.fixture(scope="module")
def stack(applied_stack):
    return applied_stack


class TestAppliedStack:
    def test_outputs(self, stack):
        """The outputs give the wss:// URL, the management endpoint, the tables and the topic."""
        api_id = stack.outputs["api_id"]
        assert stack.outputs["websocket_url"] == f"wss://{api_id}.execute-api.{REGION}.amazonaws.com/dev"
        assert stack.outputs["management_api_url"] == f"https://{api_id}.execute-api.{REGION}.amazonaws.com/dev"
        assert stack.outputs["table_names"] == {
            "sessions": "broadcast-dev-Sessions",
            "connections": "broadcast-dev-Connections",
            "rate_limits": "broadcast-dev-RateLimits",
        }
        assert stack.outputs["sns_topic_arn"].endswith(":broadcast-dev-alarms")

    def test_tables_have_their_indexes_and_ttl(self, stack):
        """Each table exists on demand with the app's keys, GSI and TTL attribute."""
        ddb = stack.client("dynamodb")
        expected = {
            "broadcast-dev-Sessions": ("sessionId", {"sweep-index": ("sweepShard", "expiresAt")}, "expiresAt"),
            "broadcast-dev-Connections": ("connectionId", {"session-members-index": ("sessionId", "member")}, "ttl"),
            "broadcast-dev-RateLimits": ("limitKey", {}, "expiresAt"),
        }
        for name, (hash_key, indexes, ttl) in expected.items():
            table = ddb.describe_table(TableName=name)["Table"]
            assert table["KeySchema"] == [{"AttributeName": hash_key, "KeyType": "HASH"}]
            assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
            found = {
                gsi["IndexName"]: tuple(k["AttributeName"] for k in gsi["KeySchema"])
                for gsi in table.get("GlobalSecondaryIndexes", [])
            }
            assert found == indexes
            from chalicelib.state.schema import table_definitions
            from chalicelib.config import Config

            local = next(d for d in table_definitions(Config()).values()
                         if name.endswith(d["TableName"]))
            assert {g["IndexName"]: _projection(g["Projection"]) for g in table.get("GlobalSecondaryIndexes", [])} == \
                {g["IndexName"]: _projection(g["Projection"]) for g in local.get("GlobalSecondaryIndexes", [])}
            description = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            assert (description["TimeToLiveStatus"], description["AttributeName"]) == ("ENABLED", ttl)

    def test_websocket_routes_and_authorizer(self, stack):
        """A WEBSOCKET API with the three routes; the REQUEST authorizer guards $connect only."""
        api = stack.client("apigatewayv2")
        api_id = stack.outputs["api_id"]
        described = api.get_api(ApiId=api_id)
        assert described["ProtocolType"] == "WEBSOCKET"
        assert described["RouteSelectionExpression"] == "$request.body.action"

        routes = {r["RouteKey"]: r for r in api.get_routes(ApiId=api_id)["Items"]}
        assert set(routes) == ROUTES
        assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
        # (moto has no GetAuthorizers: read the one $connect points at.)
        authorizer = api.get_authorizer(ApiId=api_id, AuthorizerId=routes["$connect"]["AuthorizerId"])
        assert authorizer["AuthorizerType"] == "REQUEST"
        assert not authorizer.get("IdentitySource")
        assert "function:broadcast-dev-authorizer/" in authorizer["AuthorizerUri"]
        for key in ROUTES - {"$connect"}:
            assert routes[key].get("AuthorizationType", "NONE") == "NONE"
            assert not routes[key].get("AuthorizerId")

        integrations = {i["IntegrationId"]: i for i in api.get_integrations(ApiId=api_id)["Items"]}
        functions = {"$connect": "websocket_connect", "$default": "websocket_message",
                     "$disconnect": "websocket_disconnect"}
        for key, route in routes.items():
            integration = integrations[route["Target"].split("/", 1)[1]]
            assert integration["IntegrationType"] == "AWS_PROXY"
            assert f"function:broadcast-dev-{functions[key]}/" in integration["IntegrationUri"]

        stage = api.get_stage(ApiId=api_id, StageName="dev")
        assert stage["AutoDeploy"] is True
        assert json.loads(stage["AccessLogSettings"]["Format"])["requestId"] == "$context.requestId"

    def test_functions_follow_the_manifest(self, stack):
        """Each manifest function is deployed with its handler and the contract's environment."""
        lam = stack.client("lambda")
        for name, spec in stack.package.functions.items():
            config = lam.get_function_configuration(FunctionName=f"broadcast-dev-{name}")
            assert config["Handler"] == spec["handler"]
            assert config["Runtime"] == spec["runtime"]
            env = config["Environment"]["Variables"]
            assert CONTRACT_ENVIRONMENT <= set(env), CONTRACT_ENVIRONMENT - set(env)
            assert env["CONNECTIONS_TABLE"] == "broadcast-dev-Connections"
            assert env["WELCOME_FUNCTION_NAME"] == "broadcast-dev-deliver_welcome"
            assert env["MANAGEMENT_API_URL"] == stack.outputs["management_api_url"]
            assert config["Role"].endswith(f"role/broadcast-dev-{name}-role")

    def test_each_role_is_least_privilege(self, stack):
        """One role per function; DynamoDB grants name tables or indexes, never '*'."""
        iam = stack.client("iam")
        for name in stack.package.functions:
            role = f"broadcast-dev-{name}-role"
            policy = iam.get_role_policy(RoleName=role, PolicyName="least-privilege")["PolicyDocument"]
            if isinstance(policy, str):
                policy = json.loads(policy)
            for statement in policy["Statement"]:
                resources = statement["Resource"]
                resources = [resources] if isinstance(resources, str) else resources
                actions = statement["Action"]
                actions = [actions] if isinstance(actions, str) else actions
                if any(a.startswith("dynamodb:") for a in actions):
                    assert all("*" not in r for r in resources), (name, statement)
                if "execute-api:ManageConnections" in actions:
                    assert all(f":{stack.outputs['api_id']}/dev/" in r for r in resources), (name, statement)

    def test_sweep_is_scheduled(self, stack):
        """The @app.schedule function gets an enabled EventBridge rule targeting it."""
        schedules = {n: s["schedule"] for n, s in stack.package.functions.items() if s.get("schedule")}
        assert schedules == {"sweep": "rate(1 minute)"}
        events = stack.client("events")
        for name, expression in schedules.items():
            rule = events.describe_rule(Name=f"broadcast-dev-{name}-schedule")
            assert (rule["ScheduleExpression"], rule["State"]) == (expression, "ENABLED")
            targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            assert [t["Arn"].rsplit(":", 1)[1] for t in targets] == [f"broadcast-dev-{name}"]

    def test_alarms_notify_the_topic(self, stack):
        """Every alarm's actions are the SNS topic, and the topic has the e-mail subscription."""
        cloudwatch = stack.client("cloudwatch")
        topic = stack.outputs["sns_topic_arn"]
        alarms = cloudwatch.describe_alarms(AlarmNamePrefix="broadcast-dev-")["MetricAlarms"]
        # Faults and throttles per function, JWKS, API execution errors, the two
        # ratios, the sweep's two, read/write throttles and system errors per table.
        assert len(alarms) == 2 * len(stack.package.functions) + 1 + 1 + 2 + 2 + 3 * 3
        for alarm in alarms:
            assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
        api_alarms = [a for a in alarms if a.get("Namespace") == "AWS/ApiGateway"]
        assert {a["MetricName"] for a in api_alarms} == {"ExecutionError"}
        for alarm in api_alarms:
            assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
                "ApiId": stack.outputs["api_id"], "Stage": "dev"}
        subscriptions = stack.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall@example.com")]

    def test_health_api_and_dashboard(self, stack):
        """GET /health is an HTTP API route on api_handler; the dashboard exists under
        the name its console URL gives."""
        api = stack.client("apigatewayv2")
        health = next(a for a in api.get_apis()["Items"] if a["Name"] == "broadcast-dev-health")
        assert health["ProtocolType"] == "HTTP"
        routes = api.get_routes(ApiId=health["ApiId"])["Items"]
        assert [r["RouteKey"] for r in routes] == ["GET /health"]
        integration = api.get_integration(ApiId=health["ApiId"],
                                          IntegrationId=routes[0]["Target"].split("/", 1)[1])
        assert "function:broadcast-dev-api_handler/" in integration["IntegrationUri"]
        assert stack.outputs["health_url"].endswith("/health")
        dashboards = stack.client("cloudwatch").list_dashboards()["DashboardEntries"]
        assert "broadcast-dev" in [d["DashboardName"] for d in dashboards]
        assert stack.outputs["dashboard_url"].endswith("#dashboards/dashboard/broadcast-dev")

    def test_log_groups_have_retention(self, stack):
        """Function and access log groups are created by Terraform with a retention."""
        logs = stack.client("logs")
        groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/")["logGroups"]}
        for name in stack.package.functions:
            assert groups[f"/aws/lambda/broadcast-dev-{name}"]["retentionInDays"] == 30
        assert groups["/aws/apigateway/broadcast-dev-websocket-api/dev/access"]["retentionInDays"] == 30

    def test_table_schemas_match_the_app_bootstrap(self, stack):
        """chalicelib/state/schema.py's local bootstrap creates the same tables Terraform creates."""
        from chalicelib.config import Config
        from chalicelib.state import schema

        ddb = stack.client("dynamodb")
        names = stack.outputs["table_names"]
        terraform_config = Config.from_environ({
            "SESSIONS_TABLE": names["sessions"],
            "CONNECTIONS_TABLE": names["connections"],
            "RATE_LIMITS_TABLE": names["rate_limits"],
        })
        bootstrap_config = Config.from_environ({
            "SESSIONS_TABLE": "bootstrap-Sessions",
            "CONNECTIONS_TABLE": "bootstrap-Connections",
            "RATE_LIMITS_TABLE": "bootstrap-RateLimits",
        })
        schema.ensure_tables(ddb, bootstrap_config)
        try:
            pairs = zip(schema.table_definitions(terraform_config), schema.table_definitions(bootstrap_config))
            for terraform_name, bootstrap_name in pairs:
                assert _shape(ddb, terraform_name) == _shape(ddb, bootstrap_name), terraform_name
            # And the definitions themselves, as CreateTable arguments, describe Terraform's tables.
            ttl = schema.ttl_attributes(terraform_config)
            for name, definition in schema.table_definitions(terraform_config).items():
                shape = _shape(ddb, name)
                assert shape.pop("TTL") == ("ENABLED", ttl[name]), name
                assert shape == _definition_shape(definition), name
        finally:
            for name in schema.table_definitions(bootstrap_config):
                ddb.delete_table(TableName=name)


class TestSecondPlanAndDestroy:
    def test_second_plan_shows_no_changes(self, stack):
        """Re-planning the applied stack finds nothing to change (exit code 0), but for
        the functions' logging_config: moto 5.2.5 neither stores nor returns a
        function's LoggingConfig (AWS does), so Terraform adds it again each time;
        anything else that changes is a failure."""
        result = stack.tf("plan", "-detailed-exitcode", "-out=second.tfplan", check=False)
        if result.returncode == 0:
            return
        assert result.returncode == 2, result.stdout[-6000:] + result.stderr[-2000:]
        plan = json.loads(stack.terraform.run(stack.tree, "show", "-json", "second.tfplan",
                                              env=stack.env).stdout)
        for change in plan["resource_changes"]:
            if change["change"]["actions"] == ["no-op"]:
                continue
            before, after = dict(change["change"]["before"]), dict(change["change"]["after"])
            assert change["type"] == "aws_lambda_function" and change["change"]["actions"] == ["update"], change["address"]
            assert before.pop("logging_config") == [] and after.pop("logging_config")[0]["log_format"] == "JSON"
            assert {k: v for k, v in after.items() if v is not None} == \
                {k: v for k, v in before.items() if v is not None and k in after}, change["address"]

    def test_destroy_removes_everything(self, stack):
        """terraform destroy succeeds and the tables, API and functions are gone."""
        stack.tf("destroy", "-auto-approve")
        stack.destroyed = True
        assert not [t for t in stack.client("dynamodb").list_tables()["TableNames"] if t.startswith("broadcast-dev-")]
        assert not stack.client("apigatewayv2").get_apis()["Items"]
        assert not [f for f in stack.client("lambda").list_functions()["Functions"]
                    if f["FunctionName"].startswith("broadcast-dev-")]


def _projection(projection):
    """A GSI projection, its attributes as the set they are (AWS returns them in any order)."""
    shape = dict(projection)
    if "NonKeyAttributes" in shape:
        shape["NonKeyAttributes"] = sorted(shape["NonKeyAttributes"])
    return shape


def _shape(ddb, name):
    """What matters of a table's schema, without its name: keys, attributes, indexes, TTL."""
    table = ddb.describe_table(TableName=name)["Table"]
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return {
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "BillingMode": table.get("BillingModeSummary", {}).get("BillingMode"),
        "GlobalSecondaryIndexes": sorted(
            ({"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": _projection(g["Projection"])}
             for g in table.get("GlobalSecondaryIndexes", [])),
            key=lambda g: g["IndexName"],
        ),
        "TTL": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
    }


def _definition_shape(definition):
    """The same view of CreateTable keyword arguments (which carry no TTL)."""
    return {
        "KeySchema": definition["KeySchema"],
        "AttributeDefinitions": sorted(definition["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "BillingMode": definition.get("BillingMode"),
        "GlobalSecondaryIndexes": sorted(
            ({"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": _projection(g["Projection"])}
             for g in definition.get("GlobalSecondaryIndexes", [])),
            key=lambda g: g["IndexName"],
        ),
    }
