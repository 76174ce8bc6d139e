"""Who may call the gateway's AWS APIs: the SigV4 form check and the Origin refusal (pure)."""
import pytest

from local_stack import sigv4
from tests.support.aws_http import sigv4_headers

URL = "http://127.0.0.1:8000/@connections/L0SM9cOFvHcCIhw="


class TestCheck:
    def test_botocores_signature_passes(self):
        """What botocore sends (SigV4 for the right service, no Origin) is let through."""
        assert sigv4.check(sigv4_headers("POST", URL, b"x"), sigv4.MANAGEMENT_API) is None
        assert sigv4.check(sigv4_headers("POST", URL, b"x", service="lambda"), sigv4.LAMBDA_API) is None

    def test_no_authorization_is_missing_authentication_token(self):
        """Unsigned: AWS's 403 MissingAuthenticationTokenException."""
        assert sigv4.check({"Content-Type": "text/plain"}, sigv4.MANAGEMENT_API) == sigv4.MISSING_TOKEN

    @pytest.mark.parametrize("name", ["Origin", "origin", "ORIGIN"])
    def test_any_origin_is_refused_even_when_signed(self, name):
        """A browser's Origin (any case, even "null") is refused before anything else."""
        headers = {**sigv4_headers("POST", URL, b"x"), name: "null"}
        assert sigv4.check(headers, sigv4.MANAGEMENT_API) == sigv4.CROSS_ORIGIN

    @pytest.mark.parametrize("authorization", [
        "AWS4-HMAC-SHA256",
        "Basic dGVzdDp0ZXN0",
        "AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host, Signature=nothex",
        "AWS4-HMAC-SHA256 Credential=test/2026/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host, Signature=" + "a" * 64,
    ])
    def test_incomplete_signatures(self, authorization):
        """An Authorization header without SigV4's parts is IncompleteSignatureException."""
        denial = sigv4.check({"authorization": authorization}, sigv4.MANAGEMENT_API)
        assert denial.error_type == "IncompleteSignatureException" and denial.status == 403

    def test_a_credential_for_another_service_is_refused(self):
        """Signed for lambda, sent to execute-api: InvalidSignatureException."""
        denial = sigv4.check(sigv4_headers("POST", URL, service="lambda"), sigv4.MANAGEMENT_API)
        assert denial.error_type == "InvalidSignatureException" and "'execute-api'" in denial.message

    def test_host_must_be_signed(self):
        """A signature that does not cover Host is refused."""
        authorization = ("AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/execute-api/aws4_request, "
                         "SignedHeaders=x-amz-date, Signature=" + "a" * 64)
        assert sigv4.check({"Authorization": authorization}, sigv4.MANAGEMENT_API).status == 403
