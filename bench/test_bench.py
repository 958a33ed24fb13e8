"""The benchmark runs (tiny configurations, no timing asserted), its Node reference speaks chapter 10's protocol
and does its work, and chapter 10 declines compression in every production shape."""
import concurrent.futures
import importlib.util
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests
import socketio

from tutorial.testing import next_event

BENCH = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

# What Chromium sends when it opens a WebSocket.
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"
# The smoke run: Node and one tuned Python server, the only kind that runs every trial.
SMOKE_SERVERS = {"node", "eventlet+"}


# The servers the tests below talk to, chapter 10 in each production shape and the reference.
SHAPES = ["eventlet", "gthread", "gevent", "eventlet deflate", "gthread deflate", "gevent deflate"]


def run_bench(*args):
    """Run bench/run.py with ``args`` and return what it printed."""
    finished = subprocess.run([sys.executable, str(BENCH / "run.py"), *args], capture_output=True, text=True,
                              timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


@pytest.fixture(scope="module")
def redis_url():
    """A private Redis for these tests."""
    private = bench.PrivateRedis().start()
    yield private.url
    private.remove()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One tiny run of the benchmark, every scenario, against Node and chapter 10 (eventlet, tuned)."""
    folder = tmp_path_factory.mktemp("bench")
    table = run_bench("--smoke", "--repetitions", "1", "--servers", "eventlet+", "--json",
                      str(folder / "figures.json"), "--plot", str(folder / "plot.png"))
    return table, json.loads((folder / "figures.json").read_text()), folder / "plot.png"


@pytest.fixture(scope="module")
def running(redis_url):
    """{server: its process}: the reference and every shape of SHAPES, started at once (their starts are mostly
    waiting), shared by the tests below."""
    with concurrent.futures.ThreadPoolExecutor() as pool:
        starts = {server: pool.submit(bench.start, server, redis_url) for server in ["node", *SHAPES]}
    processes = {server: start.result() for server, start in starts.items() if not start.exception()}
    try:
        for start in starts.values():
            if start.exception():
                raise start.exception()
        yield processes
    finally:
        with concurrent.futures.ThreadPoolExecutor() as pool:  # gunicorn takes a moment to stop: stop them at once
            list(pool.map(bench.Process.stop, processes.values()))


def test_smoke_run_prints_every_table_and_the_targets(smoke):
    table, _, _ = smoke
    for _, _, title, _, _ in bench.METRICS:
        assert f"**{title}**" in table
    for title, *_ in bench.TARGETS:
        assert f"| {title} | " in table
    assert "| node | " in table and "| eventlet+ | " in table


@pytest.mark.parametrize("scenario, metric", [(scenario, key) for scenario, key, *_ in bench.METRICS])
def test_smoke_run_measures_every_metric_on_every_server(smoke, scenario, metric):
    _, figures, _ = smoke
    measured = {row["server"]: row for row in figures["figures"]
                if (row["scenario"], row["metric"]) == (scenario, metric)}
    assert set(measured) == SMOKE_SERVERS
    for row in measured.values():
        assert math.isfinite(row["median"]) and 0 <= row["min"] <= row["median"] <= row["max"]
        # CPU time and memory growth may round to 0 in so short a run; the timed figures cannot.
        assert row["min"] > 0 or metric in ("cpu_us_per_delivery", "kb_per_connection", "lost", "refused")


@pytest.mark.parametrize("metric", ["lost", "refused"])
def test_smoke_run_delivers_every_notification_of_the_steady_load(smoke, metric):
    _, figures, _ = smoke
    failed = {row["server"]: row["max"] for row in figures["figures"]
              if (row["scenario"], row["metric"]) == ("steady", metric)}
    assert failed == {server: 0 for server in SMOKE_SERVERS}


def test_smoke_run_sees_what_each_server_negotiated(smoke):
    _, figures, _ = smoke
    assert figures["extensions"] == {"node": "", "eventlet+": ""}


def test_smoke_run_writes_a_plot(smoke):
    _, _, plot = smoke
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("results, plotted", [("latest results", True), ("capacity results", False)])
def test_update_readme_writes_the_report_into_both_languages(tmp_path, results, plotted):
    for name in ("README.md", "README.zh-CN.md"):
        (tmp_path / name).write_text((BENCH / name).read_text(encoding="utf-8"), encoding="utf-8")
    bench.update_readme("| the | report |", plotted=plotted, folder=tmp_path, results=results)
    for name in ("README.md", "README.zh-CN.md"):
        before, text = (BENCH / name).read_text(encoding="utf-8"), (tmp_path / name).read_text(encoding="utf-8")
        head, rest = text.split(f"<!-- end of {results} -->")
        assert head.endswith(("](latest.png)\n\n" if plotted else "-->\n") + "| the | report |\n")
        assert rest == before.split(f"<!-- end of {results} -->")[1]
        start = f"<!-- {results}"
        assert head.split(start)[0] == before.split(start)[0]


def test_capacity_and_memory_profile_run():
    capacity = run_bench("--capacity", "--smoke", "--servers", "node", "--processes", "1")
    assert "| node | 1 | " in capacity  # (the Python servers run the same steady load in the smoke run's (6))
    profile = run_bench("--profile-memory", "eventlet", "--smoke")
    assert "By file:" in profile and "By line:" in profile and "| `eventlet/" in profile


def log_in(url, name):
    """The session cookie the login form gives ``name``."""
    response = requests.post(f"{url}/login", data={"username": name}, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["Set-Cookie"].split(";")[0]


@pytest.mark.parametrize("server", ["node", "gthread"])
def test_the_node_reference_speaks_chapter_10s_protocol(redis_url, running, server):
    """The same script, same answers: the Node reference and chapter 10 (one shape: the protocol is the app's)."""
    url = running[server].url
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    alice, bob = f"alice-{server}", f"bob-{server}"
    tabs = []

    def tab(cookie, auth=None):
        tabs.append(socketio.SimpleClient())
        tabs[-1].connect(url, headers={"Cookie": cookie}, auth=auth, transports=["websocket"], wait_timeout=5)
        return tabs[-1]

    try:
        cookies = {name: log_in(url, name) for name in (alice, bob)}
        bob_tab = tab(cookies[bob])
        assert next_event(bob_tab, "replay") == {"after": None, "unknown": False, "notifications": [], "more": False,
                                                 "read_up_to": "0-0"}
        alice_tab = tab(cookies[alice])
        send = {"to": bob, "text": " hi ", "key": "bench-key-1"}
        answer = alice_tab.call("send_notification", send, timeout=5)
        delivered = next_event(bob_tab, "notification")  # rung, then read from the stream by its id
        assert delivered == {"id": answer["id"], "prev": "0-0", "n": 1, "to": bob, "from": alice, "text": "hi",
                             "at": int(answer["id"].split("-")[0]) / 1000}
        assert alice_tab.call("send_notification", send, timeout=5) == answer  # the same key: stored once
        # Stored by chapter 10's own script, where chapter 10 reads it: its store finds it.
        assert bench.notification_store.since(r, bob, None) == ([delivered], False)
        refused = {"error": "'key' must be 8 to 64 letters, digits, '_' or '-', made once per message"}
        assert alice_tab.call("send_notification", {**send, "key": "short"}, timeout=5) == refused
        assert next_event(alice_tab, "bad_input") == {"event": "send_notification", **refused}
        replayed = next_event(tab(cookies[bob], {"last_id": "0-0"}), "replay")  # a tab that holds nothing yet
        assert replayed == {"after": "0-0", "unknown": False, "notifications": [delivered], "more": False,
                            "read_up_to": "0-0"}
    finally:
        for opened in tabs:
            opened.disconnect()


def handshake(url):
    """Open a WebSocket to Socket.IO as a browser would (offering compression); return the answer's headers."""
    host, port = url.removeprefix("http://").split(":")
    request = (f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: {BROWSER_OFFER}\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(4096)
            assert chunk, f"the server closed the connection after {answer!r}"
            answer += chunk
    status, *lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    assert status.startswith("HTTP/1.1 101"), status
    return {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}


@pytest.mark.parametrize("server", SHAPES)
def test_chapter_10_declines_the_compression_browsers_offer(running, server):
    answer = handshake(running[server].url)
    assert ("permessage-deflate" in answer.get("sec-websocket-extensions", "")) is server.endswith(" deflate")
