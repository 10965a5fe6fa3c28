#!/usr/bin/env python3
"""Turns the JSON reports of benches/run-all.sh into the tables of docs/performance.md.

Owned by benches/run-all.sh, which calls it twice: `--s3-rate` (scenario 3's offered
rate from our scenario-1 results) and `--doc` (write the tables). Each row is the median of
the runs of one server in one scenario, metric by metric; losses and duplicates are summed
over the runs, so a single bad run shows. It only reads the results directory and writes
between the result markers of the document; it runs nothing.
"""

import argparse
import datetime
import glob
import json
import os
import re
import statistics
import sys

BEGIN = "<!-- results:begin (written by benches/run-all.sh; do not edit by hand) -->"
END = "<!-- results:end -->"
PEERS = ["flask-gevent", "flask-threading", "node"]
NAMES = {
    "ours": "ours (demo-web, WebSocket)",
    "ours-nodelay": "ours + TCP_NODELAY (LD_PRELOAD shim)",
    "ours-durable": "ours with the SQLite store (demo-web, WebSocket)",
    "ours-nometrics": "ours without metrics (--metrics off)",
    "raw": "raw limit (raw-ws)",
    "flask-gevent": "Flask-SocketIO, gevent",
    "flask-threading": "Flask-SocketIO, threading",
    "node": "Node.js Socket.IO",
    "ours-tcp": "ours (demo-web, TCP lines)",
    "ours-irc": "ours (demo-web, IRC)",
    "ngircd": "ngIRCd",
    "ours-2nodes": "ours, two nodes through Redis (WebSocket)",
    "before": "before the change (demo-web, WebSocket)",
    "before-tcp": "before the change (demo-web, TCP lines)",
    "before-2nodes": "before the change, two nodes through Redis",
}
TITLES = {
    1: "Scenario 1: fan-out, 1 channel x {s1} subscribers, one sender as fast as possible",
    2: "Scenario 2: chatty rooms, {s2c} channels x {s2m} members, each sending {s2r} msgs/s",
    3: "Scenario 3: latency under load, scenario 1 at 50 % of our maximum ({s3} msgs/s)",
    4: "Scenario 4: {s4} idle connections (100 channels)",
    5: "Scenario 5: TCP fan-out, 1 channel x {s1} subscribers, one sender as fast as possible",
    6: "Scenario 6: cross-node fan-out, scenario 1 with the subscribers spread over two nodes sharing one Redis",
    7: "Scenario 7: scenario 2's rooms at capacity, {s2c} channels x {s2m} members, each sending as fast as {s7w} messages in flight allow",
    8: "Scenario 8: join storm, N clients connect, log in and join one channel (128 at a time; ours at default settings)",
    10: "Scenario 10: unwindowed burst, {s10m} messages posted at once to 1 channel x {s10s} subscribers (ours at default settings, flood control lifted); then 6,000 x 4 KB messages paced by 100 readers with {s10st} members that never read (rows '+stalled')",
    9: "Scenario 9: reconnect storm, {s9} clients of one channel reset at once and back with token and last id ({s9p} messages posted meanwhile)",
}


def storm_rows(rows):
    """Scenario 8/9 row names (`ours:1000`, `raw:1000`) in order: by N, ours first."""
    def key(name):
        server, _, n = name.partition(":")
        return (int(n) if n.isdigit() else 0, server != "ours", server)
    return sorted(rows, key=key)


def storm_name(row):
    server, _, n = row.partition(":")
    label = {"ours": "ours (demo-web, defaults)", "raw": "raw limit (raw-ws: accept + subscribe)"}.get(server, server)
    return f"{label}, N = {int(n):,}" if n.isdigit() else label


def storm_clean(reports):
    ok = 0
    for r in reports:
        back = r.get("reconnect") or {}
        if "error" in r or r.get("join_failures") != 0:
            continue
        if back and (back.get("failures") or back.get("lost") or back.get("duplicates") or back.get("gaps")):
            continue
        ok += 1
    return f"{ok}/{len(reports)}"


def storm_table(rows, scenario):
    """Scenario 8 (joins) or 9 (reconnections): rate, time, server CPU per client."""
    if scenario == 8:
        out = [
            "| server | joined | seconds | joins/s | server µs/join | server CPU % | loadgen CPU % | RSS MiB | clean runs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        out = [
            "| server | back | seconds | back/s | server µs/return | server CPU % | posted | lost | dup | gaps | clean runs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    notes = []
    for row in storm_rows(rows):
        reports = rows[row]
        if scenario == 8:
            rss = med(reports, "server_rss_kib")
            cells = [
                fmt(med(reports, "joined")),
                fmt(med(reports, "join_secs"), 2),
                fmt(med(reports, "joins_per_sec")),
                fmt(med(reports, "server_us_per_join"), 1),
                fmt(percent(med(reports, "server_busy"))),
                fmt(percent(med(reports, "loadgen_busy"))),
                fmt(rss / 1024 if rss else None, 1),
            ]
        else:
            back = [r.get("reconnect") or {} for r in reports]
            cells = [
                fmt(med(back, "back")),
                fmt(med(back, "secs"), 2),
                fmt(med(back, "per_sec")),
                fmt(med(back, "server_us_per_reconnect"), 1),
                fmt(percent(med(back, "server_busy"))),
                fmt(med(back, "posted")),
                fmt(total(back, "lost")),
                fmt(total(back, "duplicates")),
                fmt(total(back, "gaps")),
            ]
        out.append("| " + " | ".join([storm_name(row)] + cells + [storm_clean(reports)]) + " |")
        for p in problems(reports):
            notes.append(f"- {storm_name(row)}: `{p}`")
    return out, notes


def storm_goals(rows):
    """Issue 22: 15,000 in at most 10 s; server CPU per join within 2x from 1,000 to 15,000."""
    joins = rows.get(8, {})
    lines = []
    big = joins.get("ours:15000", [])
    secs = med(big, "join_secs")
    if secs is not None:
        lines.append(
            f"- Scenario 8: 15,000 clients joined one channel in {fmt(secs, 2)} s (goal <= 10 s: {'met' if secs <= 10 else 'MISSED'})."
        )
    small = med(joins.get("ours:1000", []), "server_us_per_join")
    large = med(big, "server_us_per_join")
    r = ratio(large, small)
    if r is not None:
        lines.append(
            f"- Scenario 8: server CPU per join {fmt(large, 1)} µs at 15,000 against {fmt(small, 1)} µs at 1,000,"
            f" {fmt(r, 2)}x (goal within 2x: {'met' if 0.5 <= r <= 2 else 'MISSED'})."
        )
    return lines


def reports(results, pattern, name_re):
    """(match, report) for each JSON report in `results` whose file name matches; an
    unreadable file becomes a report with an error."""
    for path in sorted(glob.glob(os.path.join(results, pattern))):
        m = re.match(name_re, os.path.basename(path))
        if not m:
            continue
        try:
            with open(path) as f:
                report = json.loads(f.read().strip() or "{}")
        except (OSError, ValueError) as e:
            report = {"error": f"unreadable report: {e}"}
        yield m, report


def load(results):
    rows = {}
    for m, report in reports(results, "s*-*-*.json", r"s(\d+)-(.+)-(\d+)\.json$"):
        rows.setdefault(int(m.group(1)), {}).setdefault(m.group(2), []).append(report)
    return rows


def load_floor(results):
    """The loopback-floor reports, by pacing: {"rate": [...], "alone": [...]}."""
    floor = {}
    for m, report in reports(results, "floor-*-*.json", r"floor-(rate|alone)-(\d+)\.json$"):
        floor.setdefault(m.group(1), []).append(report)
    return floor


def floor_table(floor):
    """Scenario 3's floor: a bare writer and reader, no server, at its rate and alone."""
    out = [
        "The machine's floor (`loopback-floor`: a bare writer sending each socket every frame due for it in one"
        " `write`, and a bare reader, on the server's and the loadgen's cores; no server, no WebSocket, no JSON;"
        " median of the runs):",
        "",
        "| messages | runs | per-recipient p50 ms | p99 ms | last-recipient p99 ms | writer µs per write"
        " | frames per write | reader µs per frame |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    errors = []
    for pacing in ("rate", "alone"):
        reports = floor.get(pacing, [])
        ok = [r for r in reports if "error" not in r]
        errors += [r["error"][:160] for r in reports if "error" in r]
        if not ok:
            continue
        what = (
            f"{fmt(med(ok, 'rate_per_sec'))} per second (scenario 3's rate)"
            if pacing == "rate"
            else "each alone, 20 ms apart"
        )
        what += f", {fmt(med(ok, 'sockets'))} recipients, {fmt(med(ok, 'frame_bytes'))} B frames"
        out.append(
            f"| {what} | {len(ok)}/{len(reports)} | {fmt(med(ok, 'per_recipient_p50_ms'), 2)}"
            f" | {fmt(med(ok, 'per_recipient_p99_ms'), 2)} | {fmt(med(ok, 'last_recipient_p99_ms'), 2)}"
            f" | {fmt(med(ok, 'write_cpu_us'), 2)} | {fmt(med(ok, 'frames_per_write'), 1)}"
            f" | {fmt(med(ok, 'read_cpu_us_per_frame'), 2)} |"
        )
    if errors:
        out += ["", "Floor runs that failed: " + "; ".join(f"`{e}`" for e in errors[:3])]
    return out


def med(reports, *path):
    values = []
    for r in reports:
        v = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            values.append(v)
    return statistics.median(values) if values else None


def total(reports, key):
    return sum(r.get(key, 0) for r in reports if "error" not in r)


def fmt(v, digits=0):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def clean_runs(reports):
    ok = sum(
        1
        for r in reports
        if "error" not in r
        and r.get("lost") == 0
        and r.get("duplicates") == 0
        and r.get("untracked") == 0
        and r.get("connect_failures") == 0
        and r.get("dropped_connections") == 0
    )
    return f"{ok}/{len(reports)}"


def problems(reports):
    seen = []
    for r in reports:
        for e in ([r["error"]] if "error" in r else []) + r.get("errors", [])[:2]:
            e = e[:160]
            if e not in seen:
                seen.append(e)
    return seen[:3]


def traffic_table(rows, order):
    out = [
        "| server | deliveries/s | msgs/s sent | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms"
        " | last-recipient p99 ms | connects/s | peak RSS MiB | server CPU % | server µs/delivery | loadgen CPU %"
        " | undelivered | dup | clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for server in order:
        reports = rows.get(server)
        if not reports:
            continue
        peak = med(reports, "server_memory", "peak_kib")
        out.append(
            "| "
            + " | ".join(
                [
                    NAMES.get(server, server),
                    fmt(med(reports, "deliveries_per_sec")),
                    fmt(med(reports, "messages_per_sec")),
                    fmt(med(reports, "latency_ms", "p50"), 2),
                    fmt(med(reports, "latency_ms", "p90"), 2),
                    fmt(med(reports, "latency_ms", "p99"), 2),
                    fmt(med(reports, "latency_ms", "p999"), 2),
                    fmt(med(reports, "latency_ms", "max"), 2),
                    fmt(med(reports, "until_last_ms", "p99"), 2),
                    fmt(med(reports, "connects_per_sec")),
                    fmt(peak / 1024 if peak else None, 1),
                    fmt(percent(med(reports, "cpu", "server_busy"))),
                    fmt(med(reports, "cpu", "server_us_per_delivery"), 3),
                    fmt(percent(med(reports, "cpu", "loadgen_busy"))),
                    fmt(total(reports, "lost")),
                    fmt(total(reports, "duplicates")),
                    clean_runs(reports),
                ]
            )
            + " |"
        )
        for p in problems(reports):
            notes.append(f"- {NAMES.get(server, server)}: `{p}`")
    return out, notes


def burst_table(rows, order):
    """Scenario 10: what a burst delivers and whom it disconnects; with stalled members,
    how many the server cut and how far its memory grew (peak over connected)."""
    out = [
        "| server | delivered | expected | undelivered | readers disconnected | deliveries/s | stalled cut | RSS growth MiB | clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    names = [s for base in order for s in (base, base + "+stalled")]
    for server in names:
        reports = rows.get(server)
        if not reports:
            continue
        base, _, stalled = server.partition("+")
        growth = [
            (r.get("server_memory") or {}).get("peak_kib", 0) - (r.get("server_memory") or {}).get("connected_kib", 0)
            for r in reports
            if r.get("server_memory")
        ]
        cut = [f"{(r.get('stalled') or {}).get('cut', 0)}/{(r.get('stalled') or {}).get('connected', 0)}" for r in reports]
        out.append(
            "| "
            + " | ".join(
                [
                    NAMES.get(base, base) + (", with stalled members" if stalled else ""),
                    fmt(med(reports, "deliveries")),
                    fmt(med(reports, "expected_deliveries")),
                    fmt(total(reports, "lost")),
                    fmt(total(reports, "dropped_connections")),
                    fmt(med(reports, "deliveries_per_sec")),
                    ", ".join(cut) if stalled else "",
                    fmt(statistics.median(growth) / 1024, 1) if growth else "",
                    clean_runs(reports),
                ]
            )
            + " |"
        )
        for p in problems(reports):
            notes.append(f"- {NAMES.get(base, base)}{' (stalled)' if stalled else ''}: `{p}`")
    return out, notes


def burst_goals(rows):
    """Issue 22: zero slow-consumer disconnects in the burst; stalled members cut with
    memory growth at most the hard limit (16 MiB) per stalled member."""
    lines = []
    burst = rows.get(10, {}).get("ours", [])
    if burst:
        dropped = total(burst, "dropped_connections")
        lines.append(
            f"- Scenario 10: the burst disconnected {fmt(dropped)} readers in {len(burst)} runs (goal 0: {'met' if dropped == 0 else 'MISSED'})."
        )
    stalled = rows.get(10, {}).get("ours+stalled", [])
    for r in stalled:
        st = r.get("stalled") or {}
        mem = r.get("server_memory") or {}
        growth = (mem.get("peak_kib", 0) - mem.get("connected_kib", 0)) / 1024
        bound = 16 * st.get("connected", 0)
        ok = st.get("cut") == st.get("connected") and growth <= bound
        lines.append(
            f"- Scenario 10: {st.get('cut')} of {st.get('connected')} stalled members cut, server memory grew {growth:.1f} MiB"
            f" (goal: all cut, growth at most {bound} MiB: {'met' if ok else 'MISSED'})."
        )
    return lines


def idle_table(rows, order):
    out = [
        "| server | connected | connects/s | RSS before MiB | RSS connected MiB | per connection KiB | clean runs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for server in order:
        reports = rows.get(server)
        if not reports:
            continue
        kib = lambda *p: (lambda v: v / 1024 if v is not None else None)(med(reports, *p))
        per = med(reports, "server_memory", "per_connection_bytes")
        out.append(
            "| "
            + " | ".join(
                [
                    NAMES.get(server, server),
                    fmt(med(reports, "connected")),
                    fmt(med(reports, "connects_per_sec")),
                    fmt(kib("server_memory", "before_kib"), 1),
                    fmt(kib("server_memory", "connected_kib"), 1),
                    fmt(per / 1024 if per is not None else None, 1),
                    clean_runs(reports),
                ]
            )
            + " |"
        )
        for p in problems(reports):
            notes.append(f"- {NAMES.get(server, server)}: `{p}`")
    return out, notes


def percent(fraction):
    return fraction * 100 if fraction is not None else None


def ratio(a, b):
    return a / b if a is not None and b else None


def goals(rows, floor=None):
    lines = []

    def best_peer(scenario):
        vals = [(med(rows.get(scenario, {}).get(p, []), "deliveries_per_sec") or 0, p) for p in PEERS]
        return max(vals) if vals else (0, None)

    for scenario in (1, 2, 7):
        ours = med(rows.get(scenario, {}).get("ours", []), "deliveries_per_sec")
        raw = med(rows.get(scenario, {}).get("raw", []), "deliveries_per_sec")
        peak, who = best_peer(scenario)
        r_peer, r_raw = ratio(ours, peak), ratio(ours, raw)
        if ours is None:
            continue
        label = "Scenario 2 at capacity (scenario 7)" if scenario == 7 else f"Scenario {scenario}"
        lines.append(
            f"- {label}: ours / best peer ({NAMES.get(who, who)}) = {fmt(r_peer, 2)}x "
            f"(goal >= 5x: {'met' if r_peer and r_peer >= 5 else 'MISSED'}); "
            f"ours / raw limit = {fmt(r_raw, 2)} (goal >= 0.8: {'met' if r_raw and r_raw >= 0.8 else 'MISSED'})."
        )
    for scenario in (1, 7):
        cost = lambda who: med(rows.get(scenario, {}).get(who, []), "cpu", "server_us_per_delivery")
        busy = lambda who: percent(med(rows.get(scenario, {}).get(who, []), "cpu", "server_busy"))
        ours, raw = cost("ours"), cost("raw")
        if ours is not None and raw is not None:
            lines.append(
                f"- Scenario {scenario}, server CPU per delivery (not a goal; the engine's cost whichever side was the"
                f" limit): ours {fmt(ours, 3)} µs, raw limit {fmt(raw, 3)} µs: raw / ours = {fmt(ratio(raw, ours), 2)};"
                f" server cores busy: ours {fmt(busy('ours'))} %, raw limit {fmt(busy('raw'))} %."
            )
    p99 = med(rows.get(3, {}).get("ours", []), "latency_ms", "p99")
    if p99 is not None:
        bare = med([r for r in (floor or {}).get("rate", []) if "error" not in r], "per_recipient_p99_ms")
        floor_note = "" if bare is None else f"; a bare writer and reader at the same rate: {fmt(bare, 2)} ms"
        lines.append(
            f"- Scenario 3: our p99 = {fmt(p99, 2)} ms (goal < 10 ms: {'met' if p99 < 10 else 'MISSED'}{floor_note})."
        )
    per = med(rows.get(4, {}).get("ours", []), "server_memory", "per_connection_bytes")
    if per is not None:
        lines.append(
            f"- Scenario 4: {fmt(per / 1024, 1)} KiB per idle connection "
            f"(goal < 16 KiB: {'met' if per < 16 * 1024 else 'MISSED'})."
        )
    for scenario in (1, 3):
        plain = rows.get(scenario, {}).get("ours", [])
        fixed = rows.get(scenario, {}).get("ours-nodelay", [])
        if plain and fixed:
            lines.append(
                f"- Scenario {scenario} with TCP_NODELAY forced on (not a goal, a measured suggestion): "
                f"{fmt(ratio(med(fixed, 'deliveries_per_sec'), med(plain, 'deliveries_per_sec')), 2)}x the deliveries/s, "
                f"p99 {fmt(med(plain, 'latency_ms', 'p99'), 2)} -> {fmt(med(fixed, 'latency_ms', 'p99'), 2)} ms."
            )
    t = med(rows.get(5, {}).get("ours-tcp", []), "deliveries_per_sec")
    n = med(rows.get(5, {}).get("ngircd", []), "deliveries_per_sec")
    if t is not None and n is not None:
        lines.append(
            f"- Scenario 5: ours TCP / ngIRCd = {fmt(ratio(t, n), 2)}x "
            f"(goal > 1: {'met' if ratio(t, n) and ratio(t, n) > 1 else 'MISSED'})."
        )
    i = med(rows.get(5, {}).get("ours-irc", []), "deliveries_per_sec")
    if i is not None and n is not None:
        lines.append(
            f"- Scenario 5 through IRC (issue 23): ours IRC / ngIRCd, the same IRC loadgen client = {fmt(ratio(i, n), 2)}x "
            f"(goal >= 2x: {'met' if ratio(i, n) and ratio(i, n) >= 2 else 'MISSED'})."
        )
    on = med(rows.get(1, {}).get("ours", []), "deliveries_per_sec")
    off = med(rows.get(1, {}).get("ours-nometrics", []), "deliveries_per_sec")
    if on is not None and off:
        loss = 1 - on / off
        lines.append(
            f"- Scenario 1 with metrics on (issue 24): {fmt(on)} against {fmt(off)} deliveries/s with `--metrics off`, "
            f"{'a loss of ' + fmt(loss * 100, 1) + ' %' if loss > 0 else 'no loss'} "
            f"(goal: at most 3 %: {'met' if loss <= 0.03 else 'MISSED'})."
        )
    return lines


def s3_rate(results, subscribers):
    rows = load(results)
    d = med(rows.get(1, {}).get("ours", []), "deliveries_per_sec")
    if not d:
        return 1000
    return max(1, int(0.5 * d / subscribers))


def render(args):
    rows = load(args.results)
    floor = load_floor(args.results)
    env = {k: os.environ.get(k.upper(), "?") for k in ["s1_subscribers", "s2_channels", "s2_members", "s2_rate", "s4_clients", "s3_rate", "s7_window", "s9_clients", "s9_posts", "s10_subscribers", "s10_messages", "s10_stalled"]}
    s3 = med(next(iter(rows.get(3, {}).values()), []), "rate_per_sender")
    fill = dict(s1=env["s1_subscribers"], s2c=env["s2_channels"], s2m=env["s2_members"], s2r=env["s2_rate"], s3=fmt(s3), s4=env["s4_clients"], s7w=env["s7_window"], s9=env["s9_clients"], s9p=env["s9_posts"], s10s=env["s10_subscribers"], s10m=env["s10_messages"], s10st=env["s10_stalled"])
    out = [
        BEGIN,
        f"Measured {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} on {args.machine}.",
        f"Machine quiet (no other builds or tests running): {args.quiet}.",
        f"Command: `{args.command.strip()}`",
        f"Each row is the median of {args.runs} runs (each metric separately); undelivered and dup are summed over the runs"
        " (undelivered = expected deliveries not received when the 5 s drain after sending ended: a loss for a server that"
        " kept up, a backlog for one that could not);"
        " a clean run has zero loss, duplication, unmatched deliveries and dropped or failed connections."
        " Latencies are end to end (send on the loadgen to receipt on the loadgen), per recipient; 'last-recipient' is"
        " the time until the last subscriber had a message. Server pinned to one core, loadgen to the other.",
        "",
    ]
    for scenario in sorted(rows):
        out.append(f"### {TITLES.get(scenario, f'Scenario {scenario}').format(**fill)}")
        out.append("")
        order = {
            5: ["ours-tcp", "ours-irc", "before-tcp", "ngircd"],
            6: ["ours", "ours-2nodes", "before", "before-2nodes"],
        }.get(scenario, ["ours", "ours-nometrics", "ours-durable", "before", "ours-nodelay", "raw", "flask-gevent", "flask-threading", "node"])
        if scenario in (8, 9):
            table, notes = storm_table(rows[scenario], scenario)
        elif scenario == 10:
            table, notes = burst_table(rows[scenario], order)
        else:
            table, notes = (idle_table if scenario == 4 else traffic_table)(rows[scenario], order)
        out += table
        if notes:
            out += ["", "Failures and drops seen:"] + notes
        if scenario == 3 and floor:
            out += [""] + floor_table(floor)
        out.append("")
    out.append("### Goals (issues 6 and 22), computed from the tables above")
    out.append("")
    out += (goals(rows, floor) + storm_goals(rows) + burst_goals(rows)) or ["- (no rows for our server)"]
    out.append(END)
    block = "\n".join(out) + "\n"

    doc = open(args.doc).read() if os.path.exists(args.doc) else "# Performance\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc = head + block.rstrip("\n") + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    with open(args.doc, "w") as f:
        f.write(doc)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--s3-rate":
        print(s3_rate(sys.argv[2], int(sys.argv[3])))
        return
    p = argparse.ArgumentParser()
    p.add_argument("--doc", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--machine", default="?")
    p.add_argument("--quiet", default="?")
    p.add_argument("--command", default="benches/run-all.sh")
    p.add_argument("--runs", default="3")
    render(p.parse_args())


if __name__ == "__main__":
    main()
