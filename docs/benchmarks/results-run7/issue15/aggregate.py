#!/usr/bin/env python3
"""Build SUMMARY tables from the raw JSON of Part A and Part B (prints markdown)."""
import glob, json, os, re, statistics, sys
D = "/work/bench-runs/issue15-20261130T021341Z"
def J(f):
    try: return json.load(open(f))
    except Exception: return None
def g(j, p):
    for k in p.split("."):
        if j is None: return None
        j = j.get(k) if isinstance(j, dict) else None
    return j
def f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)
def ratio(a, b):
    return None if a is None or not b else a / b
def med(v):
    v = [x for x in v if x is not None]; return statistics.median(v) if v else None
def mm(v, fmt="{:.2f}"):
    v = [x for x in v if x is not None]
    if not v: return "-"
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"
ms = lambda us: None if us is None else us / 1000

RUNS = [("before 303f461", "pushgate-303f461", "pushgate"), ("after 20d5bfd", "pushgate-20d5bfd", "pushgate"), ("sockudo 5.2.0", "sockudo", "sockudo")]
def raw(d, r): return f"{D}/A/{d}-r{r}/raw"
def rd(path):
    try: return open(path).read().strip()
    except Exception: return None

out = []
P = out.append
# ---------- Part A ----------
P("### A, row 1: one channel x 10,000 subscribers, highest publish rate (rate search 1,2,5,...,640/s)\n")
P("| server | repeat | best rate /s (p99<100ms) | CPU us/deliv at best | p99 ms at best | sustained rate /s (p99<1s) | deliv/s at sustained | CPU us/deliv at sustained | p99 ms at sustained | peak deliv/s (nothing missing) | at target /s |")
P("|---|---|---|---|---|---|---|---|---|---|---|")
KEY = {}
for lab, d, s in RUNS:
    for r in (1, 2):
        rw = raw(d, r)
        best, sust = rd(f"{rw}/{s}-rate-best"), rd(f"{rw}/{s}-rate-sustained")
        jb = J(f"{rw}/{s}-rate-{best}-r1.json") if best else None
        js = J(f"{rw}/{s}-rate-{sust}-r1.json") if sust else None
        search = [J(x) for x in glob.glob(f"{rw}/{s}-rate-*-r1.json")]
        ok = [j for j in search if j and g(j, "delivery.missing") == 0 and g(j, "connections.dropped") == 0]
        pk = max(ok, key=lambda j: g(j, "delivery.deliveries_per_sec") or 0) if ok else None
        P(f"| {lab} | r{r} | {best or 'none'} | {f(g(jb,'server.cpu_us_per_delivery'))} | {f(ms(g(jb,'latency_us.p99')),'{:.1f}')} | {sust or 'none'} | "
          f"{f(g(js,'delivery.deliveries_per_sec'),'{:.0f}')} | {f(g(js,'server.cpu_us_per_delivery'))} | {f(ms(g(js,'latency_us.p99')),'{:.1f}')} | "
          f"{f(g(pk,'delivery.deliveries_per_sec'),'{:.0f}')} | {f(g(pk,'publish.target_rate'),'{:.0f}')} |")
        for rate in (1, 2, 5, 10, 20, 40, 80, 160, 320, 640):
            j = J(f"{rw}/{s}-rate-{rate}-r1.json")
            if j: KEY[(d, r, "rate", rate)] = j
        KEY[(d, r, "sustdps")] = g(js, "delivery.deliveries_per_sec")
        KEY[(d, r, "peak")] = g(pk, "delivery.deliveries_per_sec")
P("")
P("Row-1 search runs at each rate (CPU us/delivery / p99 ms / missing):\n")
rates = sorted({k[3] for k in KEY if len(k) == 4})
P("| server | repeat | " + " | ".join(f"{x}/s" for x in rates) + " |")
P("|---|---|" + "---|" * len(rates))
for lab, d, s in RUNS:
    for r in (1, 2):
        cells = []
        for x in rates:
            j = KEY.get((d, r, "rate", x))
            cells.append("-" if not j else f"{f(g(j,'server.cpu_us_per_delivery'))} / {f(ms(g(j,'latency_us.p99')),'{:.0f}')} / {g(j,'delivery.missing')}")
        P(f"| {lab} | r{r} | " + " | ".join(cells) + " |")
P("")

def fan_rows(title, name, extra=""):
    P(title + "\n")
    P("| server | repeat | deliveries/s | missing | CPU us/delivery | p50 ms | p99 ms | max ms | publish req p99 ms |")
    P("|---|---|---|---|---|---|---|---|---|")
    for lab, d, s in RUNS:
        for r in (1, 2):
            j = J(f"{raw(d, r)}/{s}-{name}-r1.json")
            KEY[(d, r, name)] = j
            P(f"| {lab} | r{r} | {f(g(j,'delivery.deliveries_per_sec'),'{:.0f}')} | {g(j,'delivery.missing') if j else '-'} | {f(g(j,'server.cpu_us_per_delivery'))} | "
              f"{f(ms(g(j,'latency_us.p50')),'{:.1f}')} | {f(ms(g(j,'latency_us.p99')),'{:.1f}')} | {f(ms(g(j,'latency_us.max')),'{:.1f}')} | {f(ms(g(j,'publish.request_us.p99')),'{:.1f}')} |")
    P("")
fan_rows("### A, row 2: one channel x 10,000 subscribers at a fixed 10 publishes/s", "fixed")
fan_rows("### A, row 3: 10,000 channels x 1 subscriber, random channel, 2,000 publishes/s (CPU per delivery = CPU per publish)", "random")
P("### A, rows 4+5: idle subscribed connections (hold 5 s)\n")
P("| server | repeat | conns | connected | RSS bytes/conn | RSS MiB at end | connect+subscribe /s | connect p99 ms |")
P("|---|---|---|---|---|---|---|---|")
for n in (10000, 19000):
    for lab, d, s in RUNS:
        for r in (1, 2):
            j = J(f"{raw(d, r)}/{s}-idle{n}-r1.json")
            KEY[(d, r, f"idle{n}")] = j
            P(f"| {lab} | r{r} | {n} | {g(j,'connections.connected') if j else '-'} | {f(g(j,'server.rss_bytes_per_conn'),'{:.0f}')} | {f((g(j,'server.end.rss_kb') or 0)/1024 if j else None,'{:.1f}')} | "
              f"{f(g(j,'connections.connect_rate_per_s'),'{:.0f}')} | {f(ms(g(j,'connections.connect_us.p99')),'{:.1f}')} |")
P("")

# ratios after/before
P("### A: pushgate after / before (20d5bfd / 303f461)\n")
P("Per repeat (r1 after / r1 before, r2 / r2) and mean over both repeats after / mean over both before. < 1 means the after binary is lower.\n")
P("| figure | before r1 | before r2 | after r1 | after r2 | ratio r1 | ratio r2 | ratio of means |")
P("|---|---|---|---|---|---|---|---|")
def rrow(label, getter, fmt="{:.2f}"):
    b = [getter("pushgate-303f461", r) for r in (1, 2)]
    a = [getter("pushgate-20d5bfd", r) for r in (1, 2)]
    mb = med(b); ma = med(a)
    P(f"| {label} | {f(b[0],fmt)} | {f(b[1],fmt)} | {f(a[0],fmt)} | {f(a[1],fmt)} | {f(ratio(a[0],b[0]))} | {f(ratio(a[1],b[1]))} | {f(ratio(ma,mb))} |")
for x in (1, 2, 5, 10, 20, 40):
    rrow(f"row 1 at {x}/s: CPU us/delivery", lambda d, r, x=x: g(KEY.get((d, r, "rate", x)), "server.cpu_us_per_delivery"))
for x in (1, 2, 5, 10, 20, 40):
    rrow(f"row 1 at {x}/s: p99 ms", lambda d, r, x=x: ms(g(KEY.get((d, r, "rate", x)), "latency_us.p99")), "{:.1f}")
rrow("row 1: deliv/s at sustained rate", lambda d, r: KEY.get((d, r, "sustdps")), "{:.0f}")
rrow("row 1: peak deliv/s", lambda d, r: KEY.get((d, r, "peak")), "{:.0f}")
rrow("row 2 (fixed 10/s): CPU us/delivery", lambda d, r: g(KEY.get((d, r, "fixed")), "server.cpu_us_per_delivery"))
rrow("row 2 (fixed 10/s): p99 ms", lambda d, r: ms(g(KEY.get((d, r, "fixed")), "latency_us.p99")), "{:.1f}")
rrow("row 3 (random 2000/s): CPU us/publish (=delivery)", lambda d, r: g(KEY.get((d, r, "random")), "server.cpu_us_per_delivery"))
rrow("row 3 (random 2000/s): p99 ms", lambda d, r: ms(g(KEY.get((d, r, "random")), "latency_us.p99")), "{:.1f}")
for n in (10000, 19000):
    rrow(f"row 4 idle {n}: RSS bytes/conn", lambda d, r, n=n: g(KEY.get((d, r, f"idle{n}")), "server.rss_bytes_per_conn"), "{:.0f}")
    rrow(f"row 5 idle {n}: connect+subscribe /s", lambda d, r, n=n: g(KEY.get((d, r, f"idle{n}")), "connections.connect_rate_per_s"), "{:.0f}")
P("")

# ---------- Part B ----------
B = os.environ.get("BRAW", f"{D}/B/raw")
fl = [g(J(x), "sender_cpu_us_per_send") for x in sorted(glob.glob(f"{B}/floor-r*.json"))]
fl_us = med(fl)
P("### B: floor and 10,000-subscriber fan-out at 2 publishes/s, after binary (20d5bfd)\n")
P("Cells: median (min-max) over the repeats; n = number of repeats with a result.\n")
P("| run | n | floor CPU us/send | server CPU us/delivery | p50 ms | p99 ms | max ms | deliveries (expected 200,000) | missing | load tool CPU s (process total, JSON) | load tool user+sys s (/usr/bin/time) | N x floor / shards ms | p99 / (N x floor / shards) |")
P("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
fls = [g(J(x), "sender_cpu_us_per_send") for x in sorted(glob.glob(f"{B}/floor-r*.json"))]
P(f"| B1 floor (spin reader, 10,000 sockets) | {len([x for x in fls if x is not None])} | {mm(fls, '{:.3f}')} | - | - | - | - | - | - | - | - | {f(10000*fl_us/1000 if fl_us else None,'{:.2f}')} (1 shard) | - |")
def timev(txt):
    try: t = open(txt).read()
    except Exception: return None
    u = re.search(r"User time \(seconds\): ([\d.]+)", t); s = re.search(r"System time \(seconds\): ([\d.]+)", t)
    return float(u.group(1)) + float(s.group(1)) if u and s else None
for v, label, shards in (("B2", "B2 1 shard pinned CPU 0, load pinned CPU 1, 1 worker", 1), ("B3", "B3 2 shards unpinned, load unpinned, 1 worker", 2), ("B4", "B4 2 shards unpinned, load unpinned, 2 workers", 2)):
    js = [J(x) for x in sorted(glob.glob(f"{B}/{v}-r*.json"))]
    js = [j for j in js if j]
    tv = [timev(x) for x in sorted(glob.glob(f"{B}/{v}-r*.txt"))]
    bound = 10000 * fl_us / shards / 1000 if fl_us else None
    p99 = [ms(g(j, "latency_us.p99")) for j in js]
    rr = [None if bound is None or x is None else x / bound for x in p99]
    P(f"| {label} | {len(js)} | - | {mm([g(j,'server.cpu_us_per_delivery') for j in js])} | {mm([ms(g(j,'latency_us.p50')) for j in js], '{:.1f}')} | {mm(p99, '{:.1f}')} | "
      f"{mm([ms(g(j,'latency_us.max')) for j in js], '{:.1f}')} | {mm([g(j,'delivery.delivered') for j in js], '{:.0f}')} | {mm([g(j,'delivery.missing') for j in js], '{:.0f}')} | "
      f"{mm([(g(j,'client.end.cpu_us') or 0)/1e6 if g(j,'client.end.cpu_us') is not None else None for j in js])} | {mm(tv)} | {f(bound,'{:.2f}')} | {mm(rr)} |")
P("")
P("Per repeat (server CPU us/delivery; p50 / p99 / max ms; load-tool CPU s; ratio of p99 to the bound):\n")
P("| run | r1 | r2 | r3 |\n|---|---|---|---|")
P("| B1 floor us/send | " + " | ".join(f(g(J(f"{B}/floor-r{i}.json"), "sender_cpu_us_per_send"), "{:.3f}") for i in (1, 2, 3)) + " |")
for v, shards in (("B2", 1), ("B3", 2), ("B4", 2)):
    cells = []
    for i in (1, 2, 3):
        j = J(f"{B}/{v}-r{i}.json")
        if not j: cells.append("-"); continue
        bound = 10000 * fl_us / shards / 1000 if fl_us else None
        cells.append(f"{f(g(j,'server.cpu_us_per_delivery'))} us; {f(ms(g(j,'latency_us.p50')),'{:.1f}')} / {f(ms(g(j,'latency_us.p99')),'{:.1f}')} / {f(ms(g(j,'latency_us.max')),'{:.1f}')} ms; "
                     f"missing {g(j,'delivery.missing')}; load {f((g(j,'client.end.cpu_us') or 0)/1e6)} s; p99/bound {f(ratio(ms(g(j,'latency_us.p99')), bound))}")
    P(f"| {v} | " + " | ".join(cells) + " |")
print("\n".join(out))
