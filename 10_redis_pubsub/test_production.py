"""Chapter 10 for real: gunicorn processes (gevent worker, then threads) on one Redis, behind nginx, in Chromium."""
import json
import os
import re
import signal
import socket
import subprocess
import sys

import psutil
import pytest
import requests
from playwright.sync_api import expect

from tutorial import ROOT
from tutorial.production import Cluster
from tutorial.servers import free_port
from tutorial.testing import next_event, until

ASYNC_MODE = {"gevent": "gevent", "gthread": "threading"}
ENGINEIO = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def cluster(request, redis_url):
    """Two gunicorn processes of one worker each on the session's Redis, nginx in front; once per worker."""
    # A short graceful_timeout: a restart waits that long for the connections it drops.
    with Cluster(2, request.param, redis_url=redis_url, graceful_timeout=1) as running:
        yield running


def behind_nginx(cluster):
    """The process nginx sends this machine's clients to (ip_hash): the one that knows a session opened through it."""
    sid = json.loads(requests.get(f"{cluster.url}{ENGINEIO}", timeout=5).text[1:])["sid"]
    return next(i for i, server in enumerate(cluster.servers)
                if requests.post(f"{server.url}{ENGINEIO}&sid={sid}", data="40", timeout=5).ok)


def test_a_live_client_through_nginx_over_websocket(cluster, connect, notify, name):
    carol = name("carol")
    sio = connect(cluster, carol)
    notify(carol, "hello carol")
    assert next_event(sio, "notification")["text"] == "hello carol"


def test_two_users_on_two_processes_and_a_restart_that_loses_nothing(cluster, open_page, notify, name):
    """alice on one process, bob's tabs behind nginx on the other; then bob's process stops and starts again."""
    alice, bob = name("alice"), name("bob")
    bob_tabs = [open_page(cluster.url, bob), open_page(cluster.url, bob)]
    bobs = behind_nginx(cluster)
    alice_page = open_page(cluster.servers[1 - bobs].url, alice)
    expect(alice_page.locator("#async-mode")).to_have_text(ASYNC_MODE[cluster.worker])
    alice_page.fill("#to", bob)
    alice_page.fill("#text", "hi bob")
    alice_page.click("#send button")
    for tab in bob_tabs:
        expect(tab.locator("#notifications li")).to_have_text([re.compile("hi bob")])
    bob_tabs[1].fill("#to", alice)
    bob_tabs[1].fill("#text", "hi alice")
    bob_tabs[1].click("#send button")
    expect(alice_page.locator("#notifications li")).to_have_text([re.compile("hi alice")])

    # One step of a rolling restart, as a process manager does it: SIGTERM, then start again. Bob's tabs
    # reconnect through nginx to a process that is up, with the last number they have; the rest is replayed.
    cluster.stop_server(bobs)
    notify(bob, "while his process is down")
    cluster.start_server(bobs)
    notify(bob, "once it is back")
    for tab in bob_tabs:  # each once, newest first (only the texts: how the page numbers them is its own business)
        expect(tab.locator("#notifications li")).to_have_text(
            [re.compile("once it is back"), re.compile("while his process is down"), re.compile("hi bob")])
        expect(tab.locator("#unread")).to_have_text("3")


def family(pid):
    """A process and all its descendants, as psutil sees them now."""
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def test_make_run_scale_starts_it_all_on_one_port_and_ctrl_c_leaves_nothing_behind(tmp_path):
    port = free_port()
    log = (tmp_path / "run.log").open("w")
    launcher = subprocess.Popen([sys.executable, "-m", "tutorial", "run", "10", "--scale", "2"], cwd=ROOT,
                                env={**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"},
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        until(lambda: "Ctrl-C stops all of it" in (tmp_path / "run.log").read_text() or launcher.poll() is not None,
              timeout=60, what="the launcher's summary")
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}" in output and output.count("gunicorn -k gevent -w 1") == 2, output
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        # The printed Publish command, as printed, where it says, in a terminal with no virtual environment active.
        printed = re.search(r"^ \* Publish, in another terminal, in (.+):\n   (.+)$", output, re.MULTILINE)
        folder, command = printed.groups()
        assert requests.post(f"http://127.0.0.1:{port}/login", data={"username": "bob"}, allow_redirects=False,
                             timeout=5).status_code == 302
        published = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True, timeout=30,
                                   env={**os.environ, "PATH": "/usr/local/bin:/usr/bin:/bin"})
        assert published.returncode == 0, published.stderr
        processes = family(launcher.pid)
        ports = {c.laddr.port for p in processes for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        assert port in ports and len(ports) >= 4, ports  # nginx, two gunicorn processes, Redis
    finally:
        os.killpg(launcher.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to its whole foreground process group
        assert launcher.wait(30) == 0, (tmp_path / "run.log").read_text()
        log.close()
    output = (tmp_path / "run.log").read_text()
    assert "Traceback" not in output and "lost Redis" not in output, output  # Redis outlived the servers
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections may linger (TIME_WAIT)
            probe.bind(("127.0.0.1", port))  # OSError if anything still listens there
