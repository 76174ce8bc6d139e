"""Metrics (CloudWatch Embedded Metric Format) and structured JSON logs, per
invocation; see docs/observability.md."""
