"""The embedded moto keeps nothing of a finished transaction (issue 12, defect 11).

moto's TransactWriteItems deep-copies every table it touches to roll back on
failure, and moto's model base class recorded every object it ever created, so
each copy lived for good (``make run`` grew ~40 KB per join/leave). The local
stack applies :func:`local_stack.moto_patches.untrack_dynamodb_models`; here the same
patch, and the app's own joins and leaves, against moto's in-process backend.
How much memory that saves is measured by ``make bench``, not here.
"""

import gc

import pytest
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from local_stack.moto_patches import untrack_dynamodb_models
from tests.functional.conftest import join


def live(cls):
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, cls))


@pytest.fixture
def untracked():
    untrack_dynamodb_models()


def cycles(gateway, session_id, count):
    for _ in range(count):
        status, _, cid = join(gateway, session_id)
        assert status == 200
        gateway.close(cid)


def test_join_leave_cycles_leave_no_table_copies(untracked, gateway, speaker, store):
    """Sixty joins and leaves (120 transactions, each copying two tables): afterwards
    no more Table or Item objects exist than before, and nothing tracks them."""
    _, session_id = speaker
    cycles(gateway, session_id, 5)  # warm-up: lazily created objects
    tables, items = live(Table), live(Item)
    cycles(gateway, session_id, 60)
    assert store.get_session(session_id).listener_count == 0
    assert live(Table) == tables
    assert live(Item) <= items + 5  # rate-limit and session rows are updated in place
    assert Table.instances_tracked == [] and Item.instances_tracked == []
