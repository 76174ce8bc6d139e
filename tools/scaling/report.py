"""The printed tables of `make capacity` (plain text, or Markdown for docs)."""

from __future__ import annotations

import math

import attrs
from typing import Iterable, List, Sequence

from tools.scaling import aws
from tools.scaling.measure import OLD_INDEX, Measurements
from tools.scaling.model import Result


def num(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "-"
    if value != 0 and abs(value) < 0.1:
        return f"{value:.2g}"
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"
    return f"{value:,.{digits}f}"


def money(value: float) -> str:
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 0.01:
        return f"${value:,.2f}"
    return f"${value:.2g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], markdown: bool = False) -> str:
    rows = [list(map(str, r)) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _calls(event) -> str:
    ops = {}
    for where in event.calls.values():
        for places in where.values():
            for op, n in places.items():
                if n:
                    short = op.split(".")[1]
                    ops[short] = ops.get(short, 0) + n
    return " ".join(f"{op} {n}" for op, n in sorted(ops.items()))


def events_table(measured: Measurements, result: Result, markdown: bool = False) -> str:
    rates = {}
    for term in result.terms:
        rates[term.event] = rates.get(term.event, 0) + term.rate
    rows = []
    for name, event in measured.events.items():
        rows.append([name, str(event.total_calls), _calls(event),
                     num(event.unit_total("rru"), 1), num(sum(u for t, i, k, c, u in event.units
                                                            if k == "wru" and i != OLD_INDEX), 1),
                     " ".join(f"{f} {n}" for f, n in sorted(event.invocations.items())),
                     num(sum(event.cpu_ms.values()), 2),
                     num(rates[name], 1) if name in rates else "(source of a row below)"])
    return table(["event (measured)", "calls", "by operation", "RRU", "WRU", "invocations",
                  "CPU ms", "events/s"], rows, markdown)


def before_after_table(rows, markdown: bool = False) -> str:
    return table(
        ["sessions, audio", "before: status partition WRU/s", "after: sweep-index shard WRU/s",
         "after: hottest index partition", "after WRU/s", "after RRU/s", "hottest item",
         "sweep calls per session-run before -> after"],
        [[f"{r['sessions']:,}, {r['audio']}", f"{num(r['before_wru'])} ({r['before_use'] * 100:.0f}%)",
          num(r["sweep_shard_wru"], 3),
          r["after_index"], f"{num(r['after_wru'], 2)} ({r['after_use'] * 100:.1f}%)", num(r["after_rru"], 2),
          f"{r['hottest_item']} ({r['item_use'] * 100:.1f}%)",
          f"{r['sweep_calls_per_session_before']}+ -> {r['sweep_calls_per_session']:.3f}"] for r in rows],
        markdown)


def render(result: Result, measured: Measurements, markdown: bool = False, before_after=None) -> str:
    p = result.profile
    out: List[str] = []
    h = (lambda t: f"\n### {t}\n") if markdown else (lambda t: f"\n== {t} ==")
    out.append(f"Capacity model: {p.sessions:,} sessions x {p.listeners} listeners "
               f"({p.sessions * p.listeners:,} listeners), {p.languages} languages, "
               f"{p.session_minutes:g}-minute sessions; heartbeat every {p.heartbeat_seconds:g} s, "
               f"{p.audio_chunks_per_second:g} audio chunks/s to {p.audio_sink}, "
               f"{p.translations_per_second:g} translations/s per language, {p.churn_per_minute:g} "
               f"join+leave per session-minute, refresh every {p.refresh_minutes:g} min, "
               f"sweep every {p.sweep_seconds:g} s over {p.sweep_shards} shards; Lambda {p.memory_mb} MB.")
    out.append(f"Measured on the real handlers with {measured.listeners} listeners in "
               f"{measured.languages} languages (tests/support/calls.py); listing re-read on "
               + ", ".join(f"{num(v * 100, 1)}% of {k} fan-outs" for k, v in result.listing_miss.items()) + ".")
    out.append(h("Events"))
    out.append(events_table(measured, result, markdown))

    out.append(h("Lambda"))
    rows = [[name, num(f["invocations"], 1), num(f["duration_ms"], 1), num(f["concurrency"], 1),
             money((f["invocations"] * aws.PRICES["lambda_request"].value
                    + f["gb_seconds"] * aws.PRICES["lambda_gb_second"].value) * 3600)]
            for name, f in sorted(result.functions.items(), key=lambda kv: -kv[1]["concurrency"])]
    total = sum(f["concurrency"] for f in result.functions.values())
    rows.append(["total", num(sum(f["invocations"] for f in result.functions.values()), 1), "",
                 num(total, 1), money(result.costs["Lambda"])])
    out.append(table(["function", "invocations/s", "mean ms", "concurrency", "$/hour"], rows, markdown))

    a = result.apigw
    out.append(h("API Gateway"))
    out.append(table(["what", "per second", "billed messages/s"], [
        ["client messages in ($default)", num(a["received"], 1), num(a.get("received_billed", 0), 1)],
        ["new connections ($connect)", num(a["connects"], 1), ""],
        ["@connections posts", num(a["posts"], 1), num(a.get("posts_billed", 0), 1)],
        ["@connections calls (posts, closes)", num(a["callbacks"], 1), ""],
        ["account throttle load (in + connects + @connections)", num(a["account_rps"], 1), ""],
        ["connection minutes (per hour)", num(a["connection_minutes_per_hour"]), ""],
    ], markdown))

    out.append(h("DynamoDB (on-demand)"))
    rows = []
    for (tname, index), units in sorted(result.dynamodb.items()):
        label = tname + (f" / {index}" if index else "")
        rows.append([label, num(units.get("rru", 0), 1), num(units.get("wru", 0), 1),
                     f"{max(units.get('rru', 0), units.get('wru', 0)) / 40_000 * 100:.1f}%"
                     if index != OLD_INDEX else "(not deployed)"])
    out.append(table(["table / index", "RRU/s", "WRU/s", "of 40,000 quota"], rows, markdown))
    out.append("")
    rows = [[f"{k['table']}{' / ' + k['index'] if k['index'] else ''}", k["class"],
             num(k["rru"], 2), num(k["wru"], 2), f"{k['use'] * 100:.2f}%"]
            for k in result.hot_keys]
    out.append(table(["hottest key of", "key", "RRU/s", "WRU/s", "of a partition"], rows, markdown))

    out.append(h("Other"))
    k = result.kinesis
    rows = []
    if k.get("records"):
        rows.append(["Kinesis records/s, MB/s written (1 KB-rounded)",
                     f"{num(k['records'])} / {num(k['billed_kb'] / 1024, 1)}"])
    busiest = max(f["concurrency"] for f in result.functions.values())
    rows.append(["Lambda: seconds from cold to the busiest function's concurrency "
                 "(1,000 environments per 10 s)", num(busiest / 100, 1)])
    rows.append(["CloudWatch Logs GB/hour (Lambda + access logs)", num(result.logs_gb_per_hour, 1)])
    rows.append(["data out to clients GB/hour", num(result.transfer_gb_per_hour, 1)])
    s = result.sweep
    rows.append(["sweep: calls per idle session per period / per period in all",
                 f"{num(s['calls_per_session'], 2)} / {num(s['calls_per_period'])}"])
    rows.append(["sweep: one shard's run (s) / per session (ms)",
                 f"{num(s['shard_run_seconds'], 2)} / {num(s['per_session_ms'], 2)}"])
    out.append(table(["what", "value"], rows, markdown))

    out.append(h(f"Cost (us-east-1 list prices read {aws.PRICES_READ_ON})"))
    rows = [[name, money(c), f"{c / result.cost_per_hour * 100:.1f}%"]
            for name, c in sorted(result.costs.items(), key=lambda kv: -kv[1])]
    rows.append(["total per hour", money(result.cost_per_hour), "100%"])
    rows.append(["per listener-hour", money(result.cost_per_listener_hour), ""])
    rows.append([f"per session ({p.session_minutes:g} min, {p.listeners} listeners)",
                 money(result.cost_per_session), ""])
    out.append(table(["service", "$/hour", "share"], rows, markdown))

    if before_after:
        out.append(h("Issue 10: the hottest partition before and after (% of a partition's 1,000 WRU/s)"))
        out.append(before_after_table(before_after, markdown))

    out.append(h("Quotas (defaults)"))
    rows = []
    for q in sorted(result.quotas, key=lambda q: -q.use):
        rows.append([q.quota.name + (f" [{q.detail}]" if q.detail else ""), num(q.value, 2),
                     num(q.quota.limit), f"{q.use * 100:.1f}%", q.quota.adjustable,
                     num(q.breaks_at_sessions) if q.breaks_at_sessions else ("now" if q.use > 1 else "-")])
    out.append(table(["quota", "value", "limit", "use", "adjustable", "reached at sessions"], rows, markdown))
    out.append("")
    out.append(verdict(result))
    return "\n".join(out)


def verdict(result: Result) -> str:
    lines = []
    first = result.first_to_break()
    if first:
        at = first.breaks_at_sessions
        lines.append(f"First to break: {first.quota.name}{' [' + first.detail + ']' if first.detail else ''} "
                     f"at {num(at) if at else 'any number of'} sessions ({first.quota.adjustable}).")
    fixed = result.first_to_break("no")
    lines.append("First that AWS does not raise: " + (
        f"{fixed.quota.name} [{fixed.detail}] at {num(fixed.breaks_at_sessions) if fixed.breaks_at_sessions else 'any number of'} sessions."
        if fixed else "none within reach (every fixed limit is per session or per key, and below it)."))
    over = result.exceeded()
    if over:
        lines.append("Exceeded at this profile: " + "; ".join(
            f"{q.quota.name}{' [' + q.detail + ']' if q.detail else ''} "
            f"({num(q.value, 1)} > {num(q.quota.limit)}, {q.quota.adjustable})" for q in over) + ".")
        lines.append("To run this profile, ask AWS (or set) at least: " + "; ".join(needed(result)) + ".")
    else:
        lines.append("No default quota is exceeded at this profile.")
    return "\n".join(lines)


def needed(result: Result) -> List[str]:
    """What each exceeded quota must be raised to (Lambda's invocation rate follows
    its concurrency quota: 10 synchronous invocations per second per unit)."""
    out, concurrency = [], 0.0
    for q in result.exceeded():
        if q.key == "lambda_concurrency":
            concurrency = max(concurrency, q.value)
        elif q.key == "lambda_sync_rate":
            concurrency = max(concurrency, q.value / 10)
        else:
            out.append(f"{q.quota.name}{' [' + q.detail + ']' if q.detail else ''} {num(math.ceil(q.value))} {q.quota.unit}")
    if concurrency:
        out.insert(0, f"Lambda concurrent executions {num(math.ceil(concurrency))} "
                      f"(also 10x that in synchronous invocations/s per function)")
    return out


def as_dict(result: Result) -> dict:
    """Everything the model computed, for --json."""
    return {
        "profile": attrs.asdict(result.profile),
        "listing_miss": result.listing_miss,
        "functions": result.functions,
        "apigw": result.apigw,
        "dynamodb": {f"{t}/{i}": v for (t, i), v in result.dynamodb.items()},
        "hot_keys": result.hot_keys,
        "kinesis": result.kinesis,
        "logs_gb_per_hour": result.logs_gb_per_hour,
        "transfer_gb_per_hour": result.transfer_gb_per_hour,
        "costs_per_hour": result.costs,
        "cost_per_listener_hour": result.cost_per_listener_hour,
        "cost_per_session": result.cost_per_session,
        "sweep": result.sweep,
        "quotas": [{"quota": q.quota.name, "detail": q.detail, "value": q.value, "limit": q.quota.limit,
                    "use": q.use, "adjustable": q.quota.adjustable,
                    "breaks_at_sessions": q.breaks_at_sessions} for q in result.quotas],
    }
