"""Who may call the gateway's AWS APIs (``@connections``, Lambda Invoke): pure.

AWS refuses any call to these APIs that is not signed with Signature Version 4:
no ``Authorization`` header is 403 ``MissingAuthenticationTokenException``
("Missing Authentication Token"), one without its parts 403
``IncompleteSignatureException``, a credential scoped to another service 403
``InvalidSignatureException`` (AWS General Reference, "Signing AWS API requests";
"Elements of an AWS API request signature"). botocore always signs, so the app and
boto3 in tests are unaffected.

The local gateway holds no secret key, so it checks the header's form, not the
signature. That is enough for what matters on a developer's machine: a web page
the developer visits cannot send ``Authorization`` cross-origin without a CORS
preflight, which the gateway never approves (no ``OPTIONS`` route, no
``Access-Control-Allow-*`` header). A page can still send a "simple" request
(``POST`` with ``Content-Type: text/plain``) without preflight, and it carries the
page's ``Origin``: so any request with an ``Origin`` header is refused too (403
``AccessDeniedException``). AWS's own SDKs and the CLI never send one.
"""
from __future__ import annotations

import re
from typing import Mapping, Optional

import attrs

#: ``AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/execute-api/aws4_request,
#: SignedHeaders=host;x-amz-date, Signature=<64 hex>``
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+"
    r"Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request\s*,\s*"
    r"SignedHeaders=(?P<headers>[a-z0-9-]+(?:;[a-z0-9-]+)*)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*",
    re.ASCII,
)

#: The signing names of the APIs the gateway serves.
MANAGEMENT_API = "execute-api"
LAMBDA_API = "lambda"


@attrs.frozen
class Denial:
    """A refused call, as AWS answers it (status, ``x-amzn-ErrorType``, message)."""

    status: int
    error_type: str
    message: str


MISSING_TOKEN = Denial(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
CROSS_ORIGIN = Denial(
    403, "AccessDeniedException",
    "Requests from web pages (an Origin header) are refused: the local gateway's AWS "
    "APIs are for SDKs, which sign their requests and send no Origin")


def check(headers: Mapping[str, str], service: str) -> Optional[Denial]:
    """None if a call with these (case-insensitive) ``headers`` may reach the
    ``service`` API, else how AWS (or, for ``Origin``, the gateway) refuses it."""
    lowered = {name.lower(): value for name, value in headers.items()}
    if "origin" in lowered:
        return CROSS_ORIGIN
    authorization = lowered.get("authorization")
    if authorization is None:
        return MISSING_TOKEN
    parsed = _AUTHORIZATION.fullmatch(authorization)
    if parsed is None:
        return Denial(403, "IncompleteSignatureException",
                      "Authorization header requires 'Credential', 'SignedHeaders' and "
                      "'Signature' parameters (AWS4-HMAC-SHA256)")
    if parsed["service"] != service:
        return Denial(403, "InvalidSignatureException",
                      f"Credential should be scoped to correct service: '{service}'.")
    if "host" not in parsed["headers"].split(";"):
        return Denial(403, "InvalidSignatureException",
                      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    return None
