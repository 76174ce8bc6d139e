"""The service's metrics: the catalogue, and one invocation's values rendered as
CloudWatch Embedded Metric Format (EMF). Pure: nothing here prints or calls AWS.

Every metric is declared once, below, with its unit and its one optional
dimension besides ``Stage`` (which every metric has). Dimensions are few and
closed sets (a route, a role, a reason, a code), never ids: each distinct
dimension value is a separate CloudWatch metric, billed as one. Recording an
undeclared metric, or a metric with the wrong dimension, is a programming error
and raises at once (the functional tests exercise every call site).

EMF (AWS CloudWatch User Guide, "Specification: Embedded metric format"): one JSON
object per log line; ``_aws.CloudWatchMetrics`` lists directives, each a namespace,
dimension sets and metric definitions; the dimension and metric values are the
object's top-level members. A member holds one value per object, so values of
one dimension key that differ (``Code=UNAUTHORIZED`` and ``Code=SESSION_FULL``)
go to separate objects, and a metric holds at most 100 values per object.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Tuple

import attrs

NAMESPACE = "Broadcast"
STAGE = "Stage"
MAX_VALUES = 100  # per metric per EMF object (the specification's limit)

COUNT = "Count"
MILLISECONDS = "Milliseconds"


@attrs.frozen
class MetricSpec:
    name: str
    unit: str
    dimension: Optional[str]  # the one dimension besides Stage, or None
    doc: str


def _specs(*specs: MetricSpec) -> Dict[str, MetricSpec]:
    return {spec.name: spec for spec in specs}


CATALOGUE: Dict[str, MetricSpec] = _specs(
    # -- $connect ------------------------------------------------------------------
    MetricSpec("ConnectionsAdmitted", COUNT, "Intent",
               "handshakes admitted, by intent: createSession (a speaker), joinSession (a "
               "listener), speakerRefresh, listenerRefresh"),
    MetricSpec("ConnectRefusals", COUNT, "Code",
               "handshakes refused, by error code (HTTP status or in-band alike)"),
    MetricSpec("RateLimitRefusals", COUNT, "Limit",
               "refusals by a rate limit: connectsPerAddress, sessionsPerUser"),
    MetricSpec("SessionsCreated", COUNT, None, "sessions created"),
    MetricSpec("ListenersJoined", COUNT, None,
               "listener places taken (joins, and refreshes admitted like a join)"),
    MetricSpec("RefreshesCompleted", COUNT, "Role",
               "connection refreshes admitted (the new connection holds the old one's place)"),
    MetricSpec("JwksFetchFailures", COUNT, None,
               "failed fetches of the token signing keys (speakers refused with 503)"),
    # -- first message (deliver_welcome) --------------------------------------------
    MetricSpec("WelcomeDelivered", COUNT, None, "first messages delivered"),
    MetricSpec("WelcomeGone", COUNT, None,
               "first messages not delivered because the client left first (routine)"),
    MetricSpec("WelcomeFailed", COUNT, None,
               "first messages not delivered by the deadline to a connection still there"),
    MetricSpec("WelcomeLatency", MILLISECONDS, None,
               "from the connect's answer to the first message's delivery"),
    # -- messages and leaving --------------------------------------------------------
    MetricSpec("MessagesReceived", COUNT, None, "client messages handled ($default)"),
    MetricSpec("MessageRefusals", COUNT, "Code", "client messages answered with an error, by code"),
    MetricSpec("ListenersLeft", COUNT, None,
               "listeners gone: left, closed, found gone, or released by a session's end"),
    MetricSpec("SessionsEnded", COUNT, "Reason",
               "sessions ended, by reason: speakerEnded, speakerDisconnected, expired"),
    MetricSpec("ForcedCloses", COUNT, "Reason",
               "connections the server closed, by reason: heartbeatTimeout, maxDuration"),
    # -- fan-out ---------------------------------------------------------------------
    MetricSpec("FanoutDelivered", COUNT, None, "fan-out posts delivered"),
    MetricSpec("FanoutGone", COUNT, None, "fan-out posts to connections found gone (routine)"),
    MetricSpec("FanoutFailed", COUNT, None,
               "fan-out posts that failed otherwise (throttled, 5xx): listeners who missed a message"),
    MetricSpec("FanoutDuration", MILLISECONDS, None, "duration of one fan-out"),
    # -- sweep -----------------------------------------------------------------------
    MetricSpec("SweepShardRuns", COUNT, None, "sweep_shard runs (one per shard per minute)"),
    MetricSpec("SweepCompleted", COUNT, None,
               "sweep_shard runs that got through every session of their shard in time"),
    MetricSpec("SweepDuration", MILLISECONDS, None, "duration of one sweep_shard run"),
    MetricSpec("SweepSessions", COUNT, None, "sessions checked"),
    MetricSpec("SweepSkipped", COUNT, None, "sessions left for the next sweep: out of time"),
    MetricSpec("SweepActions", COUNT, "Reason",
               "what the sweep did: ended, closed, notices, released"),
    MetricSpec("ActiveSessions", COUNT, None,
               "active sessions a shard run saw (sessions now: the sum per run of all shards)"),
    MetricSpec("ConnectedListeners", COUNT, None,
               "listener connections a shard run saw (listeners now, likewise)"),
    # -- faults ------------------------------------------------------------------------
    MetricSpec("Faults", COUNT, "Function",
               "errors of ours, by function: caught and answered (INTERNAL_ERROR, the state "
               "store failing, a sweep of one session failing, a health check failing) or "
               "uncaught (the invocation failed; AWS/Lambda Errors counts those as well)"),
)


#: The metrics whose increase an alarm counts against the service (terraform/modules/
#: alarms): routine client behaviour must never move them. The alarms' other metrics
#: are denominators (WelcomeDelivered, FanoutDelivered, FanoutGone) or signs of life
#: (SweepShardRuns, SweepCompleted), whose absence alarms.
FAULT_SIGNALS = ("Faults", "JwksFetchFailures", "WelcomeFailed", "FanoutFailed")


def dimension_sets(spec: MetricSpec) -> List[List[str]]:
    return [[STAGE, spec.dimension]] if spec.dimension else [[STAGE]]


class MetricSet:
    """The metrics of one invocation, flushed once at its end. Thread-safe: a
    fan-out or a sweep records from its worker threads."""

    def __init__(self) -> None:
        # (dimension key, dimension value) or None -> metric name -> values
        self._values: "OrderedDict[Optional[Tuple[str, str]], Dict[str, List[float]]]" = OrderedDict()
        self._properties: Dict[str, object] = {}
        self._lock = threading.Lock()

    def add(self, name: str, value: float = 1, dimension: Optional[str] = None) -> None:
        """Record ``value`` of metric ``name``; ``dimension`` is the value of its
        declared dimension (required exactly when it has one)."""
        spec = CATALOGUE.get(name)
        if spec is None:
            raise KeyError(f"metric {name!r} is not declared in chalicelib/observability/metrics.py")
        if (spec.dimension is None) != (dimension is None):
            raise ValueError(f"metric {name} takes {'no dimension' if spec.dimension is None else 'a ' + spec.dimension}, "
                             f"got {dimension!r}")
        key = (spec.dimension, str(dimension)) if spec.dimension else None
        with self._lock:
            values = self._values.setdefault(key, {}).setdefault(name, [])
            if spec.unit == COUNT and values:
                values[0] += value  # counts add up; timings keep every value
            else:
                values.append(value)

    def set_property(self, name: str, value) -> None:
        """A member of every EMF object that is no metric (searchable in Logs Insights)."""
        with self._lock:
            self._properties[name] = value

    def __bool__(self) -> bool:
        return bool(self._values)

    def drain(self) -> "Dict[Optional[Tuple[str, str]], Dict[str, List[float]]]":
        with self._lock:
            values, self._values = self._values, OrderedDict()
            return values

    def to_emf(self, stage: str, timestamp_ms: int) -> List[dict]:
        """The EMF objects for everything recorded (and forget it): as few as the
        one-value-per-member rule allows, usually one."""
        groups = self.drain()
        with self._lock:
            properties = dict(self._properties)
        documents: List[dict] = []
        for key, metrics in groups.items():
            for chunk in _chunks(metrics):
                document = _fitting(documents, key, chunk)
                if document is None:
                    document = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": []},
                                **properties, STAGE: stage}
                    documents.append(document)
                directive = {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[STAGE, key[0]]] if key else [[STAGE]],
                    "Metrics": [{"Name": name, "Unit": CATALOGUE[name].unit} for name in chunk],
                }
                document["_aws"]["CloudWatchMetrics"].append(directive)
                if key:
                    document[key[0]] = key[1]
                for name, values in chunk.items():
                    document[name] = values[0] if len(values) == 1 else values
        return documents


def _chunks(metrics: Dict[str, List[float]]) -> Iterator[Dict[str, List[float]]]:
    """``metrics`` split so that no metric holds more than MAX_VALUES values."""
    rest = dict(metrics)
    while rest:
        chunk = {name: values[:MAX_VALUES] for name, values in rest.items()}
        rest = {name: values[MAX_VALUES:] for name, values in rest.items() if len(values) > MAX_VALUES}
        yield chunk


def _fitting(documents: List[dict], key, chunk) -> Optional[dict]:
    """A document this group can join: its dimension key unused (or same value),
    none of its metric names there yet."""
    for document in documents:
        if key and key[0] in document and document[key[0]] != key[1]:
            continue
        if any(name in document for name in chunk):
            continue
        return document
    return None


def metric_values(document: dict) -> Iterator[Tuple[str, Dict[str, str], float]]:
    """Read an EMF object back: (metric name, dimensions, value) per value. For the
    local stack's collector and the tests."""
    aws = document.get("_aws") or {}
    for directive in aws.get("CloudWatchMetrics") or []:
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = {name: str(document.get(name)) for name in dimension_set}
            for metric in directive.get("Metrics") or []:
                value = document.get(metric["Name"])
                for one in value if isinstance(value, list) else [value]:
                    if isinstance(one, (int, float)) and not isinstance(one, bool):
                        yield metric["Name"], dimensions, one


def is_emf(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("_aws"), dict) and \
        "CloudWatchMetrics" in document["_aws"]
