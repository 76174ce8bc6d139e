"""Our EMF emitter against Powertools for AWS Lambda: cold import and zip size (issue 11).

The question the issue asks: does Powertools' Metrics and Logger earn its place in
the Lambda package? Measured the way Lambda pays for it: a fresh interpreter, the
code unpacked without .pyc files (our zip ships none, so every module compiles on a
cold start), importing the metrics and logging code and emitting one EMF object
and one JSON log line. Zip size is what each adds to the deployment package,
compressed as the zip compresses it.

Powertools is downloaded here (pinned, binary wheels only, into build/) rather
than kept in the requirements: the app does not use it, and a bench should not make
every developer install it. Its own dependencies (jmespath, typing_extensions) are
counted in its size only when the package does not ship them already.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POWERTOOLS = "aws-lambda-powertools==3.37.0"
RUNS = 5

# What the app imports anyway (attrs for its records, the standard library's json
# and logging) is loaded before the clock starts: only the marginal cost counts.
BASELINE = "import attrs, json, logging, sys, time\n"

OURS = BASELINE + r"""
t = time.perf_counter()
from chalicelib.observability import logs, metrics
m = metrics.MetricSet()
m.add("SessionsCreated")
for doc in m.to_emf("dev", 0):
    sys.stdout.write(json.dumps(doc) + "\n")
logs.install(level="INFO", privacy_key="k" * 32, stream=sys.stdout)
logging.getLogger("app").info("hello")
print(time.perf_counter() - t)
"""

THEIRS = BASELINE + r"""
t = time.perf_counter()
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
metrics = Metrics(namespace="Broadcast", service="broadcast")
metrics.add_dimension(name="Stage", value="dev")
metrics.add_metric(name="SessionsCreated", unit=MetricUnit.Count, value=1)
metrics.flush_metrics()
Logger(service="broadcast").info("hello")
print(time.perf_counter() - t)
"""


def _copy_source(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _zip_bytes(root: Path, names) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            for path in sorted((root / name).rglob("*") if (root / name).is_dir() else [root / name]):
                if path.is_file():
                    archive.write(path, path.relative_to(root))
    return len(buffer.getvalue())


def _cold(code: str, path: Path) -> float:
    samples = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-B", "-c", f"import sys; sys.path.insert(0, {str(path)!r})\n{code}"],
            cwd=path, capture_output=True, text=True, check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(samples)


def _powertools(into: Path) -> Path:
    """Unpack Powertools' wheel into ``into``; its dependencies come from this venv."""
    wheels = ROOT / "build" / "bench-powertools"
    if not list(wheels.glob("aws_lambda_powertools-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", str(wheels), POWERTOOLS], check=True)
    wheel = next(wheels.glob("aws_lambda_powertools-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


def measure() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ours = Path(tmp) / "ours"
        ours.mkdir()
        _copy_source(ROOT / "chalicelib", ours / "chalicelib")
        theirs = _powertools(Path(tmp) / "theirs")
        return {
            "ours_import_ms": _cold(OURS, ours),
            "powertools_import_ms": _cold(THEIRS, theirs),
            "ours_zip_bytes": _zip_bytes(ours / "chalicelib", ["observability"]),
            "powertools_zip_bytes": _zip_bytes(theirs, ["aws_lambda_powertools"]),
            # Only the parts Metrics and Logger need, had we vendored just those.
            "powertools_metrics_logging_zip_bytes": _zip_bytes(
                theirs / "aws_lambda_powertools",
                ["metrics", "logging", "shared", "__init__.py", "package_logger.py"]),
        }


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key:<40} {value:>12.1f}")
