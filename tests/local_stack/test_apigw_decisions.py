"""Sans-I/O tests of API Gateway's decisions: routes, authorizer policies, $connect answers."""
import json

import pytest

from local_stack.apigw import decisions, events

API = events.ApiContext(api_id="abcde12345", stage="dev", domain_name="127.0.0.1:8000")


class TestRouteSelection:
    def test_everything_goes_to_default_in_chalice(self):
        """With only $default, every message lands there."""
        routes = ["$connect", "$default", "$disconnect"]
        for body in ('{"action":"heartbeat"}', "not json", b"\x00", '["x"]', '{"action":"$connect"}'):
            assert decisions.select_route(body, routes) == "$default"

    def test_custom_route_matches_action(self):
        """$request.body.action selects a custom route when one exists."""
        assert decisions.select_route('{"action":"send"}', ["send", "$default"]) == "send"
        assert decisions.select_route('{"action":"other"}', ["send"]) is None

    @pytest.mark.parametrize("depth", [990, 5000, 60000])
    def test_json_too_deep_to_parse_goes_to_default(self, depth):
        """A selection expression that cannot be evaluated (JSON nested past the
        parser's recursion limit) selects $default instead of raising."""
        body = '{"action": "send", "x": %s1%s}' % ("[" * depth, "]" * depth)
        assert decisions.select_route(body, ["send", "$default"]) == "$default"


def policy(effect, resource, context=None, principal="user"):
    result = {"principalId": principal, "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]}}
    if context is not None:
        result["context"] = context
    return result


class TestAuthorizer:
    ARN = API.connect_method_arn

    def test_allow_passes_stringified_context_and_principal(self):
        """Allow yields the context (values as strings) plus principalId."""
        decision = decisions.evaluate_authorizer(
            policy("Allow", self.ARN, {"userId": "u1", "n": 3, "ok": True}), self.ARN)
        assert decision == decisions.Allowed({"userId": "u1", "n": "3", "ok": "true", "principalId": "user"})

    def test_deny_is_403(self):
        """An explicit Deny refuses with 403 and API Gateway's body."""
        refusal = decisions.evaluate_authorizer(policy("Deny", self.ARN), self.ARN)
        assert refusal.status == 403 and json.loads(refusal.body) == {"message": "Forbidden"}

    def test_allow_for_another_resource_is_403(self):
        """An Allow that does not match methodArn is an implicit deny."""
        other = self.ARN.replace("/dev/", "/prod/")
        assert decisions.evaluate_authorizer(policy("Allow", other), self.ARN).status == 403

    def test_wildcard_resource_allows(self):
        """IAM wildcards in Resource match the methodArn."""
        wildcard = "arn:aws:execute-api:us-east-1:123456789012:abcde12345/*"
        assert isinstance(decisions.evaluate_authorizer(policy("Allow", wildcard), self.ARN), decisions.Allowed)

    def test_explicit_deny_wins_over_allow(self):
        """A matching Deny beats a matching Allow."""
        result = policy("Allow", self.ARN)
        result["policyDocument"]["Statement"].append(
            {"Action": "execute-api:*", "Effect": "Deny", "Resource": [self.ARN]})
        assert decisions.evaluate_authorizer(result, self.ARN).status == 403

    @pytest.mark.parametrize("result", [
        {"hello": "world"},
        "Allow",
        None,
        {"policyDocument": {"Statement": []}},
        policy("Allow", ARN, {"nested": {"a": 1}}),
        policy("Maybe", ARN),
    ])
    def test_malformed_output_is_500(self, result):
        """Output that is not a valid policy response is a 500."""
        assert decisions.evaluate_authorizer(result, self.ARN) == decisions.INTERNAL_ERROR

    def test_returned_unauthorized_string_is_500(self):
        """A returned 'Unauthorized' string is not a policy response: 500, as in AWS."""
        assert decisions.evaluate_authorizer("Unauthorized", self.ARN) == decisions.INTERNAL_ERROR


class TestConnectResponse:
    def test_success_variants(self):
        """None, no statusCode and any 2xx accept the connection."""
        for result in (None, {}, {"statusCode": 200}, {"statusCode": 204}, "text"):
            assert decisions.evaluate_connect_response(result) is None

    def test_non_2xx_refuses_with_status_and_body(self):
        """A non-2xx statusCode refuses the handshake with that status, body kept."""
        refusal = decisions.evaluate_connect_response(
            {"statusCode": 404, "body": '{"code": "SESSION_NOT_FOUND"}'})
        assert refusal == decisions.Refusal(404, '{"code": "SESSION_NOT_FOUND"}')
        assert decisions.evaluate_connect_response({"statusCode": "503", "body": {"a": 1}}).body == '{"a": 1}'

    def test_invalid_status_is_500(self):
        """A statusCode that is not an HTTP status is a 500."""
        assert decisions.evaluate_connect_response({"statusCode": "abc"}).status == 500
        assert decisions.evaluate_connect_response({"statusCode": 42}).status == 500
