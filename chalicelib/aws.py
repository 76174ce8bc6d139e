"""AWS clients, created lazily and once per container.

botocore's own, not boto3's: importing boto3 also imports s3transfer, about 60 ms
of every cold start for S3 transfers the app never makes (docs/scaling.md, cold
start). Endpoints are plain SDK configuration (``AWS_ENDPOINT_URL``,
``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL_LAMBDA``...), so the same code
runs against AWS, LocalStack, moto or the local gateway. Nothing is created at
import time, which also keeps moto's mocks in control in tests.
"""

from __future__ import annotations

import threading
from typing import Dict, Optional


class Clients:
    def __init__(self, session=None) -> None:
        self._session = session
        self._clients: Dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _botocore_session(self):
        if self._session is None:
            import botocore.session

            self._session = botocore.session.get_session()
        return self._session

    def client(self, service: str, endpoint_url: Optional[str] = None, **config):
        key = (service, endpoint_url)
        with self._lock:
            if key not in self._clients:
                from botocore.config import Config as BotoConfig

                boto_config = BotoConfig(**config) if config else None
                self._clients[key] = self._botocore_session().create_client(
                    service, endpoint_url=endpoint_url, config=boto_config
                )
            return self._clients[key]

    def dynamodb(self):
        return self.client(
            "dynamodb",
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,  # fan-out cleanups run in a thread pool
        )

    def lambda_(self):
        return self.client(
            "lambda",
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 2},
        )

    def management(self, endpoint_url: str):
        # Sends must fail fast: a slow connection must not stall a fan-out.
        return self.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint_url,
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 2},
            max_pool_connections=64,
        )
