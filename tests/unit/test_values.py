"""chalicelib/state/values.py maps values exactly as boto3's TypeSerializer and
TypeDeserializer do (it stands in for them to keep boto3 out of cold starts)."""

from decimal import Decimal

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from chalicelib.state.values import deserialize, serialize

VALUES = [
    None, True, False, 0, 1, -7, 10**37, Decimal("0.5"), Decimal("1796231480470.123456"),
    Decimal("-1E-129"), "", "faithful-shepherd-427", "ünïcødé", b"\x00\x01",
    [], [1, "a", None, [True]], {}, {"isPaused": False, "volume": Decimal("0.8"), "n": {"es": 3}},
    {"a", "b"}, {1, Decimal("2.5")}, {b"x", b"y"},
]
INVALID = [1.5, float("nan"), Decimal("Infinity"), Decimal("NaN"), 10**130,
           int("9" * 39), {1, "a"}, object()]
# boto3 lets these through and DynamoDB refuses them; refused here before the call.
REFUSED_BY_DYNAMODB = [Decimal("1E-131"), set()]


class TestLikeBoto3:
    @pytest.mark.parametrize("value", VALUES, ids=repr)
    def test_serializes_the_same(self, value):
        """Each storable value becomes the same attribute value as with boto3."""
        expected = TypeSerializer().serialize(value)
        ours = serialize(value)
        # boto3 wraps bytes in Binary and keeps set order arbitrary: compare as such.
        normalise = lambda v: {k: sorted(map(str, x)) if k in ("SS", "NS", "BS") else x
                               for k, x in v.items()}  # noqa: E731
        if isinstance(value, (bytes, set)):
            assert normalise(ours) == normalise({k: [bytes(b) if isinstance(b, Binary) else b for b in x]
                                                 if isinstance(x, list) else (bytes(x) if isinstance(x, Binary) else x)
                                                 for k, x in expected.items()})
        else:
            assert ours == expected

    @pytest.mark.parametrize("value", VALUES, ids=repr)
    def test_reads_back_the_same(self, value):
        """What DynamoDB returns reads back as boto3 reads it (numbers as Decimal)."""
        attribute = TypeSerializer().serialize(value)
        expected = TypeDeserializer().deserialize(attribute)
        ours = deserialize(attribute)
        if isinstance(expected, Binary):
            expected = bytes(expected)
        if isinstance(expected, set) and expected and isinstance(next(iter(expected)), Binary):
            expected = {bytes(b) for b in expected}
        assert ours == expected

    @pytest.mark.parametrize("value", INVALID, ids=repr)
    def test_refuses_what_boto3_refuses(self, value):
        """Floats, infinities, numbers DynamoDB cannot hold, mixed or empty sets:
        refused by both."""
        with pytest.raises(Exception):
            TypeSerializer().serialize(value)
        with pytest.raises(TypeError):
            serialize(value)

    @pytest.mark.parametrize("value", REFUSED_BY_DYNAMODB, ids=repr)
    def test_refuses_what_dynamodb_would(self, value):
        """A number below DynamoDB's 1E-130 and an empty set never reach it."""
        with pytest.raises(TypeError):
            serialize(value)
