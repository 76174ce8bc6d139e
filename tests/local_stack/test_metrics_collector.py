"""The local collector behind /_local/metrics and make run's summary line."""
from chalicelib.observability.metrics import MetricSet
from local_stack.metrics import Collector


def emf(*metrics):
    """The EMF objects one invocation would print for ``metrics`` ((name, dimension))."""
    values = MetricSet()
    for name, dimension in metrics:
        values.add(name, 1, dimension)
    return values.to_emf("dev", 0)


def feed(collector, *metrics):
    for document in emf(*metrics):
        collector.add(document)


class TestSummary:
    def test_nothing_connected_and_nothing_counted_prints_nothing(self):
        assert Collector().summary(connections=0, period=10) is None

    def test_the_sweep_alone_prints_nothing(self):
        """An idle make run stays quiet: the sweep's own counters are no activity."""
        collector = Collector()
        feed(collector, ("SweepShardRuns", None), ("SweepCompleted", None))
        assert collector.summary(connections=0, period=10) is None

    def test_a_refusal_with_nothing_connected_is_summarised(self):
        """A user trying refusals alone still sees them, once."""
        collector = Collector()
        feed(collector, ("ConnectRefusals", "UNAUTHORIZED"))
        line = collector.summary(connections=0, period=10)
        assert line.endswith("last 10 s: 0 messages, 1 refusal (UNAUTHORIZED 1)")
        assert collector.summary(connections=0, period=10) is None

    def test_each_line_covers_its_own_period_only(self):
        """Counts of an earlier window never reappear under 'last minute'."""
        collector = Collector()
        feed(collector, ("MessagesReceived", None), ("MessagesReceived", None))
        assert "last minute: 2 messages, 0 refusals" in collector.summary(connections=1)
        feed(collector, ("MessagesReceived", None))
        line = collector.summary(connections=1)
        assert line == "summary: 0 sessions, 0 listeners, 1 connection open; last minute: 1 message, 0 refusals"
