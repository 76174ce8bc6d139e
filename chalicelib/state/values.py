"""Plain Python values to and from DynamoDB's typed attribute values.

The same mapping as boto3's ``TypeSerializer``/``TypeDeserializer``, for the types
the app stores (str, int, Decimal, bool, None, bytes, lists, dicts, sets): importing
those classes imports boto3 itself, and with it s3transfer, which costs every cold
start about 60 ms. tests/unit/test_values.py holds the two to the same results.
Numbers follow DynamoDB's rules: finite, at most 38 significant digits, magnitude
from 1E-130 to under 1E+126, and never floats (which boto3 refuses too: a float
rarely is the decimal it looks like). Pure.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_MIN, _MAX = Decimal("1E-130"), Decimal("1E+126")


def _number(value) -> str:
    number = value if isinstance(value, Decimal) else Decimal(value)
    if not number.is_finite():
        raise TypeError(f"{value} is not a DynamoDB number (infinity and NaN are not)")
    if number and not _MIN <= abs(number) < _MAX:
        raise TypeError("a number out of DynamoDB's range (1E-130 to 1E+126)")
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    if len(digits) > 38:  # (normalize() would round to the context's 28 digits first)
        raise TypeError("a number of more than 38 significant digits")
    return str(value)


def serialize(value: Any) -> dict:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, Decimal)):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, (set, frozenset)):
        if value and all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if value and all(isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in value]}
        if value and all(isinstance(v, (bytes, bytearray)) for v in value):
            return {"BS": [bytes(v) for v in value]}
        raise TypeError("a set must be non-empty and hold only strings, numbers or bytes")
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    raise TypeError(f"{type(value).__name__} cannot be stored in DynamoDB (floats: use Decimal)")


def deserialize(attribute: dict) -> Any:
    (kind, value), = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: deserialize(v) for k, v in value.items()}
    if kind == "L":
        return [deserialize(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "B":
        return bytes(value)
    if kind == "BS":
        return {bytes(v) for v in value}
    raise TypeError(f"unknown DynamoDB type {kind!r}")
