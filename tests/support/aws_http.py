"""Raw HTTP to the local gateway's AWS APIs, signed as botocore signs, or not at all."""

import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, data: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
    """(status, headers, body) of a plain HTTP request: no signature, no retries."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def sigv4_headers(method: str, url: str, data: Optional[bytes] = None,
                  service: str = "execute-api", region: str = "us-east-1") -> Dict[str, str]:
    """The headers botocore adds to sign this request (``Authorization``, ``X-Amz-Date``)."""
    request = AWSRequest(method=method, url=url, data=data or b"")
    SigV4Auth(Credentials("test", "test"), service, region).add_auth(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "host"}


def signed_http(method: str, url: str, data: Optional[bytes] = None,
                service: str = "execute-api", headers: Optional[Dict[str, str]] = None):
    """:func:`http`, signed with SigV4 for ``service`` (plus any extra ``headers``)."""
    return http(method, url, data, {**sigv4_headers(method, url, data, service), **(headers or {})})
