"""local_stack/moto_server.py and moto_patches.py: the one moto server the project
starts (make run, deploy-local, the functional tests), and what its patches change."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local_stack import moto_patches
from local_stack.moto_server import MotoPortInUse, MotoServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    with MotoServer(0) as running:
        yield running


@pytest.fixture
def dynamodb(server):
    from local_stack.moto_server import reset

    reset(server.url)
    client = boto3.client("dynamodb", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for name in ("A", "B"):
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    return client


def item(client, table, key):
    return client.get_item(TableName=table, Key={"k": {"S": key}}, ConsistentRead=True).get("Item")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


class TestServer:
    def test_listens_on_127_0_0_1_in_a_process_of_its_own(self, server):
        """The server is a child process on 127.0.0.1 (its own core, not the caller's GIL)."""
        assert server.url.startswith("http://127.0.0.1:")
        assert server._process.pid != os.getpid()

    def test_taken_port_fails_fast_naming_moto_port_and_aws_endpoint_url(self):
        """A port in use is an error saying what to change, not a hang."""
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen(1)
            port = other.getsockname()[1]
            started = time.monotonic()
            with pytest.raises(MotoPortInUse) as info:
                MotoServer(port).start()
        assert time.monotonic() - started < 20
        message = info.value.strerror
        assert f"127.0.0.1:{port}" in message and "Address already in use" in message
        assert "MOTO_PORT" in message and "AWS_ENDPOINT_URL" in message

    def test_a_server_that_cannot_start_says_why(self):
        """A server that fails before serving (here: an unknown patch to skip) is an
        error carrying its reason, not a hang."""
        with pytest.raises(OSError) as info:
            MotoServer(0, skip_patches=["no_such_patch"]).start()
        assert "no_such_patch" in str(info.value)

    def test_gets_test_credentials_never_the_developers(self, tmp_path):
        """moto's process sees test keys, no AWS_PROFILE and no endpoint of its own."""
        probe = tmp_path / "env.json"
        script = ("import json, os, sys; json.dump({k: os.environ.get(k) for k in ('AWS_ACCESS_KEY_ID', "
                  "'AWS_PROFILE', 'AWS_ENDPOINT_URL')}, open(sys.argv[1], 'w'))")
        from local_stack.moto_server import _server_environment

        env = _server_environment({"AWS_PROFILE": "prod", "AWS_ACCESS_KEY_ID": "AKIAREAL",
                                   "AWS_ENDPOINT_URL": "http://elsewhere", "PATH": os.environ["PATH"]})
        subprocess.run([sys.executable, "-c", script, str(probe)], env=env, check=True)
        assert json.loads(probe.read_text()) == {
            "AWS_ACCESS_KEY_ID": "test", "AWS_PROFILE": None, "AWS_ENDPOINT_URL": None}

    def test_stop_ends_the_process(self):
        moto = MotoServer(0)
        moto.start()
        pid = moto._process.pid
        moto.stop()
        assert wait_gone(pid)

    def test_dies_with_the_process_that_started_it(self, tmp_path):
        """Killed without a chance to clean up (SIGKILL), the starter leaves no moto behind."""
        starter = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time; from local_stack.moto_server import MotoServer; m = MotoServer(0); "
             "m.start(); print(m._process.pid, flush=True); time.sleep(60)"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            moto_pid = int(starter.stdout.readline())
            assert alive(moto_pid)
            starter.send_signal(signal.SIGKILL)
            starter.wait(10)
            assert wait_gone(moto_pid), "the moto server outlived the process that started it"
        finally:
            starter.kill()
            starter.wait()
            starter.stdout.close()


class TestTransactionPatch:
    def test_a_cancelled_transaction_puts_back_exactly_what_it_changed(self, dynamodb):
        """Put (new item), Update and Delete applied before a failed condition are all undone,
        in both tables, and items the transaction did not name keep their values."""
        dynamodb.put_item(TableName="A", Item={"k": {"S": "updated"}, "n": {"N": "1"}})
        dynamodb.put_item(TableName="B", Item={"k": {"S": "deleted"}, "n": {"N": "2"}})
        dynamodb.put_item(TableName="B", Item={"k": {"S": "bystander"}, "n": {"N": "3"}})
        with pytest.raises(ClientError) as info:
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "A", "Item": {"k": {"S": "created"}}}},
                {"Update": {"TableName": "A", "Key": {"k": {"S": "updated"}},
                            "UpdateExpression": "SET n = n + :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Delete": {"TableName": "B", "Key": {"k": {"S": "deleted"}}}},
                {"ConditionCheck": {"TableName": "B", "Key": {"k": {"S": "missing"}},
                                    "ConditionExpression": "attribute_exists(k)"}},
            ])
        assert info.value.response["Error"]["Code"] == "TransactionCanceledException"
        reasons = [r["Code"] for r in info.value.response["CancellationReasons"]]
        assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
        assert item(dynamodb, "A", "created") is None
        assert item(dynamodb, "A", "updated") == {"k": {"S": "updated"}, "n": {"N": "1"}}
        assert item(dynamodb, "B", "deleted") == {"k": {"S": "deleted"}, "n": {"N": "2"}}
        assert item(dynamodb, "B", "bystander") == {"k": {"S": "bystander"}, "n": {"N": "3"}}

    def test_a_transaction_that_passes_applies_every_write(self, dynamodb):
        dynamodb.put_item(TableName="A", Item={"k": {"S": "counter"}, "n": {"N": "1"}})
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "B", "Item": {"k": {"S": "row"}},
                     "ConditionExpression": "attribute_not_exists(k)"}},
            {"Update": {"TableName": "A", "Key": {"k": {"S": "counter"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ConditionExpression": "n < :max",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":max": {"N": "5"}}}},
        ])
        assert item(dynamodb, "B", "row") == {"k": {"S": "row"}}
        assert item(dynamodb, "A", "counter")["n"] == {"N": "2"}

    def test_the_same_item_twice_is_refused_and_nothing_is_written(self, dynamodb):
        with pytest.raises(ClientError) as info:
            dynamodb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "A", "Item": {"k": {"S": "twice"}}}},
                {"Put": {"TableName": "B", "Item": {"k": {"S": "other"}}}},
                {"Delete": {"TableName": "A", "Key": {"k": {"S": "twice"}}}},
            ])
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert item(dynamodb, "A", "twice") is None and item(dynamodb, "B", "other") is None

    def test_rollback_keeps_the_tables_own_objects(self):
        """In-process: a cancelled transaction no longer swaps in whole-table copies
        (what made moto 5.2.5 copy every item of a table on every transaction)."""
        from moto import mock_aws
        from moto.dynamodb.models import dynamodb_backends

        moto_patches.snapshot_transaction_items()
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(TableName="T", BillingMode="PAY_PER_REQUEST",
                                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
            backend = dynamodb_backends["123456789012"]["us-east-1"]
            table = backend.tables["T"]
            with pytest.raises(ClientError):
                client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": "T", "Item": {"k": {"S": "x"}}}},
                    {"ConditionCheck": {"TableName": "T", "Key": {"k": {"S": "y"}},
                                        "ConditionExpression": "attribute_exists(k)"}}])
            assert backend.tables["T"] is table and not table.items


class TestUpdateExpressionCache:
    def test_one_expression_with_different_values_gives_each_its_own_result(self, dynamodb):
        """The cached parse of an expression never carries one request's values into another."""
        for value in ("1", "2", "3"):
            dynamodb.update_item(TableName="A", Key={"k": {"S": "c"}},
                                 UpdateExpression="SET #n = :v",
                                 ExpressionAttributeNames={"#n": "n"},
                                 ExpressionAttributeValues={":v": {"N": value}})
            assert item(dynamodb, "A", "c")["n"] == {"N": value}

    def test_an_invalid_expression_fails_every_time(self, dynamodb):
        for _ in range(2):
            with pytest.raises(ClientError) as info:
                dynamodb.update_item(TableName="A", Key={"k": {"S": "c"}},
                                     UpdateExpression="SET = :v",
                                     ExpressionAttributeValues={":v": {"N": "1"}})
            assert info.value.response["Error"]["Code"] == "ValidationException"


class TestPatches:
    def test_written_for_the_pinned_moto(self):
        """Bumping moto means re-reading every patch against the new code (then this number)."""
        import moto

        assert moto.__version__ == moto_patches.MOTO_VERSION

    def test_an_unknown_name_to_skip_is_refused(self):
        with pytest.raises(ValueError, match="no_such_patch"):
            moto_patches.apply(skip=["no_such_patch"])

    def test_every_patch_is_idempotent(self):
        moto_patches.apply()
        from moto.dynamodb.responses import DynamoHandler

        wrapped = DynamoHandler.call_action
        moto_patches.apply()
        assert DynamoHandler.call_action is wrapped
