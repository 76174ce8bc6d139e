"""terraform/deployer-policy.json and permissions-boundary.json: the deployer can
create everything the stack declares, and cannot escalate its own privileges.

IAM evaluation per the IAM User Guide ("Permissions boundaries for IAM
entities"; "IAM condition context keys": iam:PermissionsBoundary,
iam:PolicyARN, iam:PassedToService): a principal that may create roles or
write their policies without a boundary can grant itself anything.
"""

from __future__ import annotations

import fnmatch
import json
import re

from tests.terraform.tfsupport import TERRAFORM_DIR

DEPLOYER = json.loads((TERRAFORM_DIR / "deployer-policy.json").read_text())
BOUNDARY = json.loads((TERRAFORM_DIR / "permissions-boundary.json").read_text())
BOUNDARY_ARN = "arn:aws:iam::${aws:PrincipalAccount}:policy/broadcast-permissions-boundary"

# The action that creates each resource type the configuration declares.
CREATE_ACTIONS = {
    "aws_dynamodb_table": "dynamodb:CreateTable",
    "aws_lambda_function": "lambda:CreateFunction",
    "aws_lambda_permission": "lambda:AddPermission",
    "aws_lambda_function_event_invoke_config": "lambda:PutFunctionEventInvokeConfig",
    "aws_iam_role": "iam:CreateRole",
    "aws_iam_role_policy": "iam:PutRolePolicy",
    "aws_iam_role_policy_attachment": "iam:AttachRolePolicy",
    "aws_cloudwatch_log_group": "logs:CreateLogGroup",
    "aws_cloudwatch_event_rule": "events:PutRule",
    "aws_cloudwatch_event_target": "events:PutTargets",
    "aws_cloudwatch_metric_alarm": "cloudwatch:PutMetricAlarm",
    "aws_cloudwatch_dashboard": "cloudwatch:PutDashboard",
    "aws_sns_topic": "sns:CreateTopic",
    "aws_sns_topic_subscription": "sns:Subscribe",
    "aws_apigatewayv2_api": "apigateway:POST",
    "aws_apigatewayv2_authorizer": "apigateway:POST",
    "aws_apigatewayv2_integration": "apigateway:POST",
    "aws_apigatewayv2_route": "apigateway:POST",
    "aws_apigatewayv2_stage": "apigateway:POST",
    "aws_api_gateway_account": "apigateway:PATCH",
    "aws_kinesis_stream": "kinesis:CreateStream",
    "aws_cognito_user_pool": "cognito-idp:CreateUserPool",
    "aws_cognito_user_pool_client": "cognito-idp:CreateUserPoolClient",
    "aws_s3_bucket": "s3:CreateBucket",
    "aws_s3_bucket_policy": "s3:PutBucketPolicy",
    "aws_s3_bucket_public_access_block": "s3:PutBucketPublicAccessBlock",
    "aws_s3_bucket_ownership_controls": "s3:PutBucketOwnershipControls",
    "aws_s3_bucket_server_side_encryption_configuration": "s3:PutEncryptionConfiguration",
    "aws_s3_object": "s3:PutObject",
    "aws_cloudfront_distribution": "cloudfront:CreateDistribution",
    "aws_cloudfront_origin_access_control": "cloudfront:CreateOriginAccessControl",
    "aws_cloudfront_response_headers_policy": "cloudfront:CreateResponseHeadersPolicy",
    # Terraform's own (built in): creates nothing in AWS.
    "terraform_data": None,
}


def statements(policy, effect="Allow"):
    for statement in policy["Statement"]:
        if statement["Effect"] == effect:
            actions = statement["Action"]
            yield statement, actions if isinstance(actions, list) else [actions]


def allowed(action):
    return [s for s, actions in statements(DEPLOYER) if any(fnmatch.fnmatchcase(action, a) for a in actions)]


class TestNoPrivilegeEscalation:
    def test_no_wildcard_actions(self):
        """Every allowed action is named; no service:* or *."""
        for _, actions in statements(DEPLOYER):
            assert not [a for a in actions if "*" in a], actions

    def test_roles_are_created_and_written_only_with_the_boundary(self):
        """CreateRole, PutRolePolicy, PutRolePermissionsBoundary require iam:PermissionsBoundary
        to be this project's boundary policy."""
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"):
            grants = allowed(action)
            assert grants, action
            for grant in grants:
                assert grant["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == BOUNDARY_ARN, action

    def test_only_the_logging_managed_policy_can_be_attached(self):
        """AttachRolePolicy is limited by iam:PolicyARN to API Gateway's logging policy."""
        for grant in allowed("iam:AttachRolePolicy"):
            arn = grant["Condition"]["ArnEquals"]["iam:PolicyARN"]
            assert arn == "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
            assert "*" not in arn

    def test_the_boundary_cannot_be_lifted_or_rewritten(self):
        """DeleteRolePermissionsBoundary and changes to the boundary policy are denied."""
        assert not allowed("iam:DeleteRolePermissionsBoundary")
        denied = [a for _, actions in statements(DEPLOYER, "Deny") for a in actions]
        for action in ("iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion",
                       "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"):
            assert action in denied

    def test_no_other_way_to_new_permissions(self):
        """No policy creation, user/group policies, access keys or unconditioned PassRole."""
        for action in ("iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
                       "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:AttachGroupPolicy",
                       "iam:PutGroupPolicy", "iam:CreateAccessKey", "iam:CreateUser",
                       "iam:AddUserToGroup", "iam:UpdateAssumeRolePolicy", "sts:AssumeRole"):
            assert not allowed(action), action
        for grant in allowed("iam:PassRole"):
            assert set(grant["Condition"]["StringEquals"]["iam:PassedToService"]) == {
                "lambda.amazonaws.com", "apigateway.amazonaws.com"}


class TestDeployerCanCreateTheStack:
    def test_every_resource_type_has_its_create_action(self):
        """Each resource type in terraform/**/*.tf is known here and its create action allowed."""
        types = set()
        for path in TERRAFORM_DIR.rglob("*.tf"):
            if ".terraform" in path.parts:
                continue
            types |= set(re.findall(r'^resource "(\w+)"', path.read_text(), re.MULTILINE))
        unknown = types - set(CREATE_ACTIONS)
        assert not unknown, f"add the create action of {unknown} here and to deployer-policy.json"
        for resource_type in types:
            if CREATE_ACTIONS[resource_type] is not None:
                assert allowed(CREATE_ACTIONS[resource_type]), (resource_type, CREATE_ACTIONS[resource_type])


class TestBoundary:
    def test_boundary_admits_the_functions_and_nothing_administrative(self):
        """The boundary allows the app's data-plane calls only: no IAM, no control planes."""
        actions = {a for _, acts in statements(BOUNDARY) for a in acts}
        assert {"dynamodb:GetItem", "execute-api:ManageConnections", "lambda:InvokeFunction",
                "logs:PutLogEvents"} <= actions
        assert not [a for a in actions if a.split(":")[0] in {"iam", "sts", "cognito-idp", "apigateway"}
                    or "*" in a]
