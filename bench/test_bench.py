"""The benchmark runs (a tiny configuration, no timing asserted), and chapter 10 declines compression."""
import importlib.util
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

# What Chromium sends when it opens a WebSocket.
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def redis_url():
    """A private Redis for these tests."""
    private = bench.PrivateRedis().start()
    yield private.url
    private.remove()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One tiny run of the benchmark, against Node and chapter 10 in eventlet mode, with and without compression."""
    folder = tmp_path_factory.mktemp("bench")
    finished = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--smoke", "--repetitions", "1", "--servers", "eventlet",
         "eventlet deflate", "--json", str(folder / "figures.json"), "--plot", str(folder / "plot.png")],
        capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout, json.loads((folder / "figures.json").read_text()), folder / "plot.png"


def test_smoke_run_prints_every_table(smoke):
    table, _, _ = smoke
    for _, _, title, _, _ in bench.METRICS:
        assert f"**{title}**" in table
    assert "| node | " in table and "| eventlet | " in table and "| eventlet deflate | " in table


@pytest.mark.parametrize("scenario, metric", [(scenario, key) for scenario, key, *_ in bench.METRICS])
def test_smoke_run_measures_every_metric_on_every_server(smoke, scenario, metric):
    _, figures, _ = smoke
    servers = {"node", "eventlet"} | ({"eventlet deflate"} if scenario in ("fanout", "connections") else set())
    measured = {row["server"]: row for row in figures["figures"]
                if (row["scenario"], row["metric"]) == (scenario, metric)}
    assert set(measured) == servers
    for row in measured.values():
        assert math.isfinite(row["median"]) and 0 <= row["min"] <= row["median"] <= row["max"]
        # CPU time and memory growth may round to 0 in so short a run; the timed figures cannot.
        assert row["min"] > 0 or metric in ("cpu_us_per_delivery", "kb_per_connection")


def test_smoke_run_sees_what_each_server_negotiated(smoke):
    _, figures, _ = smoke
    assert figures["extensions"] == {"node": "", "eventlet": "", "eventlet deflate": "permessage-deflate"}


def test_smoke_run_writes_a_plot(smoke):
    _, _, plot = smoke
    assert plot.read_bytes().startswith(b"\x89PNG")


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


@pytest.mark.parametrize("server, accepted", [
    ("eventlet", False), ("threading", False), ("gevent", False),
    ("eventlet deflate", True), ("threading deflate", True), ("gevent deflate", True),
])
def test_chapter_10_declines_the_compression_browsers_offer(redis_url, server, accepted):
    running = bench.start(server, redis_url)
    try:
        answer = handshake(running.url)
    finally:
        running.stop()
    assert ("permessage-deflate" in answer.get("sec-websocket-extensions", "")) is accepted
