"""Counting the AWS calls the app's handlers make, per service and operation.

The same counter backs the call-budget tests (tests/functional/test_call_budgets.py)
and the capacity model (tools/capacity.py, `make capacity`): the model's numbers
are measured, not typed in.

It counts *logical* calls (botocore's ``before-call``, once per API call however
often botocore retries it) on every client the runtime builds, plus the harness's
stand-ins for API Gateway's ``@connections`` and Lambda's async invoke, which are
not botocore clients.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Dict


class CallCounter:
    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self._lock = threading.Lock()
        self._hooked = set()

    def count(self, service: str, operation: str) -> None:
        with self._lock:
            self.calls[(service, operation)] += 1

    def attach(self, client) -> None:
        """Count every logical call a botocore client makes."""
        if id(client) in self._hooked:
            return
        self._hooked.add(id(client))
        service = client.meta.service_model.service_name

        def before_call(model, **_):
            self.count(service, model.name)

        client.meta.events.register("before-call", before_call)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def snapshot(self) -> Dict[str, int]:
        """{"dynamodb.TransactWriteItems": 1, ...}"""
        with self._lock:
            return {f"{s}.{o}": n for (s, o), n in sorted(self.calls.items())}

    def total(self, service: str = None) -> int:
        with self._lock:
            return sum(n for (s, _), n in self.calls.items() if service in (None, s))


def counting(gateway, counter: CallCounter = None) -> CallCounter:
    """A counter (``counter``, else a new one) on everything the harness gateway's
    app calls: its boto3 clients (created now, so they are hooked before first use),
    ``@connections`` and the asynchronous invocation of ``deliver_welcome``."""
    counter = counter if counter is not None else CallCounter()
    clients = gateway.runtime.clients
    original = clients.client

    def client(service, endpoint_url=None, **config):
        created = original(service, endpoint_url, **config)
        counter.attach(created)
        return created

    clients.client = client
    for created in list(clients._clients.values()):
        counter.attach(created)
    gateway.call_counter = counter
    return counter
