"""DynamoDB's sizing and request-unit rules as the capacity model applies them
(tools/scaling/units.py; docs/scaling.md). Pure."""

import pytest

from tools.scaling.units import IndexSpec, item_size, read_units, write_units


def s(value):
    return {"S": value}


def n(value):
    return {"N": str(value)}


class TestItemSize:
    def test_a_string_is_its_name_and_utf8_bytes(self):
        """Names count, and non-ASCII text counts in UTF-8 bytes."""
        assert item_size({"sessionId": s("faithful-shepherd-427")}) == 9 + 21
        assert item_size({"t": s("añ")}) == 1 + 3

    def test_a_number_is_a_byte_per_two_significant_digits_plus_one(self):
        """Leading and trailing zeroes do not count."""
        assert item_size({"c": n(1)}) == 1 + 2
        assert item_size({"c": n(12345)}) == 1 + 4
        assert item_size({"c": n(1700000000000)}) == 1 + 2

    def test_maps_cost_three_bytes_and_one_per_element(self):
        """{"m": {"a": true}}: name, 3 bytes of map, the element's name, value and byte."""
        assert item_size({"m": {"M": {"a": {"BOOL": True}}}}) == 1 + 3 + (1 + 1 + 1)

    def test_no_item_has_no_size(self):
        """A read that finds nothing, a write that creates: the absent image is 0 bytes."""
        assert item_size(None) == 0


class TestUnits:
    @pytest.mark.parametrize("size,units", [(0, 1), (1024, 1), (1025, 2), (3000, 3)])
    def test_a_write_costs_a_unit_per_started_kb(self, size, units):
        """At least one unit; a transaction twice as many."""
        assert write_units(size, 0) == units
        assert write_units(0, size, transactional=True) == 2 * units

    def test_an_update_is_priced_by_the_larger_image(self):
        """DynamoDB counts the item as it is before or after, whichever is larger."""
        assert write_units(2000, 500) == 2

    def test_query_sums_then_rounds_batch_rounds_each(self):
        """Ten 100-byte items: one 4 KB block for a query, ten for a batch read."""
        assert read_units([100] * 10, consistent=True) == 1
        assert read_units([100] * 10, consistent=True, each=True) == 10
        assert read_units([100] * 10, consistent=False) == 0.5

    def test_a_read_that_finds_nothing_still_costs_a_block(self):
        """An empty query or a missing item is one block (half a unit eventually consistent)."""
        assert read_units([], consistent=False) == 0.5
        assert read_units([0], consistent=True, each=True) == 1


class TestIndexWrites:
    sweep = IndexSpec("sweep", ["sessionId"], ["sweepShard", "expiresAt"], "INCLUDE", ["status"])
    members = IndexSpec("members", ["connectionId"], ["sessionId", "member"])

    def session(self, **changes):
        item = {"sessionId": s("a-b-100"), "sweepShard": n(3), "expiresAt": n(1000),
                "status": s("active"), "listenerCount": n(4)}
        item.update(changes)
        return {k: v for k, v in item.items() if v is not None}

    def test_a_change_outside_the_projection_writes_no_index(self):
        """Counts and sequence numbers are not projected: the sweep index is untouched."""
        assert self.sweep.write_units(self.session(), self.session(listenerCount=n(5))) == 0

    def test_a_projected_change_writes_the_entry_once(self):
        """status is projected: ending a session rewrites its entry."""
        assert self.sweep.write_units(self.session(), self.session(status=s("ended"))) == 1

    def test_a_key_change_is_a_delete_and_a_put(self):
        """A refresh that moves expiresAt (the sort key) costs two index writes."""
        assert self.sweep.write_units(self.session(), self.session(expiresAt=n(2000))) == 2

    def test_a_sparse_index_is_written_when_an_item_enters_or_leaves(self):
        """Without sweepShard the item is not in the index."""
        assert self.sweep.write_units(None, self.session()) == 1
        assert self.sweep.write_units(self.session(), self.session(sweepShard=None)) == 1
        assert self.sweep.write_units(self.session(sweepShard=None),
                                      self.session(sweepShard=None, status=s("ended"))) == 0

    def test_projection_all_is_written_on_any_change(self):
        """A heartbeat's lastSeenAt reaches an index that projects everything."""
        row = {"connectionId": s("c1"), "sessionId": s("a-b-100"), "member": s("es"), "lastSeenAt": n(1)}
        assert self.members.write_units(row, {**row, "lastSeenAt": n(2)}) == 1
