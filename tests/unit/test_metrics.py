"""The metrics catalogue and its Embedded Metric Format rendering (pure)."""

import json

import pytest

from chalicelib.observability.metrics import CATALOGUE, MAX_VALUES, NAMESPACE, MetricSet, metric_values


def rendered(metric_set):
    return metric_set.to_emf("dev", 1764633600000)


class TestEmf:
    def test_one_object_holds_every_metric_it_can(self):
        """Metrics without a dimension and one value per dimension key share one object."""
        metrics = MetricSet()
        metrics.add("ListenersJoined")
        metrics.add("ListenersJoined")
        metrics.add("ConnectionsAdmitted", 1, "joinSession")
        metrics.add("WelcomeLatency", 12.5)
        (document,) = rendered(metrics)
        assert document["Stage"] == "dev" and document["Intent"] == "joinSession"
        assert document["ListenersJoined"] == 2 and document["WelcomeLatency"] == 12.5
        directives = document["_aws"]["CloudWatchMetrics"]
        assert {d["Namespace"] for d in directives} == {NAMESPACE}
        assert sorted(map(str, (d["Dimensions"] for d in directives))) == ["[['Stage', 'Intent']]", "[['Stage']]"]
        assert document["_aws"]["Timestamp"] == 1764633600000

    def test_two_values_of_one_dimension_need_two_objects(self):
        """A member holds one value: Code=UNAUTHORIZED and Code=SESSION_FULL go apart."""
        metrics = MetricSet()
        metrics.add("ConnectRefusals", 1, "UNAUTHORIZED")
        metrics.add("ConnectRefusals", 1, "SESSION_FULL")
        metrics.add("ConnectRefusals", 1, "UNAUTHORIZED")
        documents = rendered(metrics)
        assert sorted((d["Code"], d["ConnectRefusals"]) for d in documents) == [
            ("SESSION_FULL", 1), ("UNAUTHORIZED", 2)]

    def test_at_most_100_values_per_metric_and_object(self):
        """Timings keep every value, 100 to an object at most (the specification's limit)."""
        metrics = MetricSet()
        for value in range(250):
            metrics.add("FanoutDuration", value)
        documents = rendered(metrics)
        assert [len(d["FanoutDuration"]) for d in documents] == [MAX_VALUES, MAX_VALUES, 50]
        assert sorted(v for d in documents for _, _, v in metric_values(d)) == list(range(250))

    def test_rendering_drains(self):
        """Flushed once: a second flush has nothing to say."""
        metrics = MetricSet()
        metrics.add("SessionsCreated")
        assert rendered(metrics) and rendered(metrics) == []

    def test_a_document_is_one_json_line(self):
        """What the emitter prints is one line of JSON."""
        metrics = MetricSet()
        metrics.add("SessionsEnded", 1, "expired")
        line = json.dumps(rendered(metrics)[0], separators=(",", ":"))
        assert "\n" not in line and json.loads(line)["Reason"] == "expired"


class TestCatalogue:
    def test_undeclared_metric_is_refused(self):
        """A typo in a metric name fails at once, not silently in CloudWatch."""
        with pytest.raises(KeyError):
            MetricSet().add("ListenerJoined")

    def test_the_declared_dimension_is_required(self):
        """A metric with a dimension needs its value; one without takes none."""
        with pytest.raises(ValueError):
            MetricSet().add("ConnectRefusals")
        with pytest.raises(ValueError):
            MetricSet().add("SessionsCreated", 1, "x")

    def test_dimensions_are_few_and_never_ids(self):
        """At most one dimension besides Stage, from a closed list."""
        allowed = {None, "Intent", "Code", "Limit", "Role", "Reason", "Function"}
        assert {spec.dimension for spec in CATALOGUE.values()} <= allowed


class TestDocumentation:
    def test_doc_table_is_the_catalogue(self):
        """docs/observability.md's metrics table lists exactly the declared metrics,
        with their units, dimensions and meanings, in declaration order
        (`python tools/metrics_table.py --write` regenerates it)."""
        from pathlib import Path

        doc = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
        rows = [f"| `{spec.name}` | {spec.unit} | `Stage`{f', `{spec.dimension}`' if spec.dimension else ''} "
                f"| {spec.doc} |" for spec in CATALOGUE.values()]
        table = "\n".join(["| metric | unit | dimensions | meaning |", "|---|---|---|---|", *rows]) + "\n\n"
        assert table in doc
