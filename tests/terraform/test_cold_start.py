"""The packaged functions serve their first request from a cold process.

``make bench``'s cold-start measurement (bench/cold_start.py) run once per function
on the real package: the zip unpacked without .pyc, a fresh interpreter, the first
request served against a moto server. The timings belong to the benchmark (rule 5);
what is asserted is what a user of a cold Lambda would notice: the handler answers,
from the package alone (a module left out of the zip, an import that needs the
builder's environment, or a bench that no longer runs would fail here).
"""
import pytest

from bench import cold_start

pytestmark = [pytest.mark.terraform, pytest.mark.slow]


def test_every_function_answers_its_first_request_from_the_package(package):
    results = cold_start.measure(package.zip, runs=1)
    answers = {name: numbers["result"] for name, numbers in results.items() if not name.startswith("(")}
    assert set(answers) == {"authorizer", "websocket_connect", "websocket_message", "websocket_disconnect",
                            "deliver_welcome", "publish", "sweep_shard"}
    assert "'Effect': 'Allow'" in answers["authorizer"]
    for name in ("websocket_connect", "websocket_message", "websocket_disconnect"):
        assert "'statusCode': 200" in answers[name], (name, answers[name])
    assert answers["deliver_welcome"] == "{'delivered': True}"
    assert "'sequenceNumbers'" in answers["publish"] and "error" not in answers["publish"]
