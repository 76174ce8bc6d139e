#!/usr/bin/env python3
"""Capacity model and simulation of the stack (docs/scaling.md).

    python tools/capacity.py [--sessions 10000 --listeners 100 --languages 5 ...]
    python tools/capacity.py simulate [--sessions 1000 --listeners 3]

The model first measures every event on the real handlers (in-process, against
moto, with the tests' call counter: a few seconds), then multiplies by the profile
and prints per AWS service the request rates, Lambda concurrency, DynamoDB units per
table, index and hottest key, API Gateway messages, cost, and each default quota's
use; it exits 0 and says what breaks first. ``--json FILE`` also writes everything.

``simulate`` drives the real sweep and fan-out against a moto server on 127.0.0.1
with many sessions and prints calls and wall time per session.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _latency(text: str):
    op, _, ms = text.partition("=")
    try:
        return op, float(ms)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected OP=MS (dynamodb.Query=8), got {text!r}") from None


def make_variables(argv, fields):
    """``SESSIONS=10000`` (as mk/capacity.mk passes them) -> ``--sessions 10000``."""
    out = []
    for arg in argv:
        name, equals, value = arg.partition("=")
        if equals and name.isupper() and name.lower() in fields:
            out += ["--" + name.lower().replace("_", "-"), value]
        elif equals and name.isupper():
            raise SystemExit(f"capacity.py: unknown profile variable {name} "
                             f"(known: {', '.join(f.upper() for f in sorted(fields))})")
        else:
            out.append(arg)
    return out


def model_main(argv) -> int:
    import attrs

    from tools.scaling import model, profile, report
    from tools.scaling.measure import Measurements, measure

    argv = make_variables(argv, {f.name for f in attrs.fields(profile.Profile)})

    parser = argparse.ArgumentParser(prog="capacity.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    profile.add_arguments(parser)
    parser.add_argument("--latency", type=_latency, action="append", default=[],
                        help="override an assumed call latency, e.g. dynamodb.Query=8 (repeatable)")
    parser.add_argument("--measured", type=Path, help="reuse measurements written by --json")
    parser.add_argument("--json", type=Path, help="also write the measurements and the result here")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)
    try:
        chosen = profile.from_arguments(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.measured:
        measured = Measurements.from_dict(json.loads(args.measured.read_text())["measurements"])
    else:
        print(f"measuring each event with {chosen.listeners} listeners in {chosen.languages} languages "
              "(real handlers, in-process moto)...", file=sys.stderr)
        measured = measure(**chosen.measured_shape())
    result = model.run(chosen, measured, dict(args.latency))
    compared = model.before_after(chosen, measured, 1000, dict(args.latency))
    print(report.render(result, measured, markdown=args.markdown, before_after=compared))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"measurements": measured.to_dict(),
                                         "result": report.as_dict(result)}, indent=1, default=str))
        print(f"\nwritten to {args.json}", file=sys.stderr)
    return 0


def simulate_main(argv) -> int:
    from tools.scaling import simulate

    parser = argparse.ArgumentParser(prog="capacity.py simulate", description=simulate.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--listeners", type=int, default=3, help="per session in the sweep run")
    parser.add_argument("--fanout", type=int, default=500, help="listeners of the fan-out session")
    parser.add_argument("--shards", type=int, default=16, help="SWEEP_SHARDS")
    parser.add_argument("--concurrency", type=int, default=16, help="SWEEP_CONCURRENCY")
    parser.add_argument("--post-ms", type=float, default=15.0,
                        help="latency given to each simulated @connections post")
    parser.add_argument("--target-sessions", type=int, default=10_000,
                        help="extrapolate the sweep to this many sessions")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    numbers = simulate.run(sessions=args.sessions, listeners=args.listeners, fanout=args.fanout,
                           shards=args.shards, concurrency=args.concurrency, post_ms=args.post_ms,
                           target_sessions=args.target_sessions)
    print(simulate.render(numbers))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(numbers, indent=1))
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "simulate":
        return simulate_main(argv[1:])
    return model_main(argv)


if __name__ == "__main__":
    sys.exit(main())
