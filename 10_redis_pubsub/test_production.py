"""Chapter 10 for real: gunicorn processes (gevent worker, then threads) on one Redis, behind nginx, in Chromium."""
import os
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
from tutorial.testing import until

ASYNC_MODE = {"gevent": "gevent", "gthread": "threading"}


@pytest.fixture(scope="module", params=["gevent", "gthread"])
def cluster(request, redis_url):
    """Two gunicorn processes of one worker each on the session's Redis, nginx in front; once per worker."""
    # A short graceful_timeout: a restart waits that long for the connections it drops.
    with Cluster(2, request.param, redis_url=redis_url, graceful_timeout=1) as running:
        yield running


def test_two_users_on_two_gunicorn_processes_and_nginx_notify_each_other(cluster, open_page, name):
    alice, bob = name("alice"), name("bob")
    alice_page = open_page(cluster.servers[0].url, alice)
    bob_pages = [open_page(cluster.servers[1].url, bob), open_page(cluster.url, bob)]  # his second tab via nginx
    expect(alice_page.locator("#async-mode")).to_have_text(ASYNC_MODE[cluster.worker])
    alice_page.fill("#to", bob)
    alice_page.fill("#text", "hi bob")
    alice_page.click("#send button")
    for page in bob_pages:
        expect(page.locator("#notifications li")).to_have_text([f"#1 {alice}: hi bob"])
    bob_pages[1].fill("#to", alice)
    bob_pages[1].fill("#text", "hi alice")
    bob_pages[1].click("#send button")
    expect(alice_page.locator("#notifications li")).to_have_text([f"#1 {bob}: hi alice"])


def test_a_rolling_restart_loses_nothing_and_shows_nothing_twice(cluster, open_page, notify, name):
    """Each process in turn stops (SIGTERM) and starts again while bob's tabs stay open behind nginx."""
    bob = name("bob")
    tabs = [open_page(cluster.url, bob), open_page(cluster.url, bob)]
    sent = []
    for index in range(len(cluster.servers)):
        cluster.stop_server(index)
        sent.append(f"while process {index} is down")
        notify(bob, sent[-1])
        cluster.start_server(index)
        sent.append(f"once process {index} is back")
        notify(bob, sent[-1])
    shown = [f"#{number} tester: {text}" for number, text in reversed(list(enumerate(sent, 1)))]
    for tab in tabs:
        expect(tab.locator("#notifications li")).to_have_text(shown, timeout=15000)
        expect(tab.locator("#unread")).to_have_text(str(len(sent)))


def family(pid):
    """A process and all its descendants, as psutil sees them now."""
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def test_make_run_scale_starts_it_all_on_one_port_and_ctrl_c_leaves_nothing_behind(tmp_path):
    port = free_port()
    log = (tmp_path / "run.log").open("w")
    launcher = subprocess.Popen([sys.executable, "-m", "tutorial", "run", "10", "--scale", "2"], cwd=ROOT,
                                env={**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"},
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        until(lambda: "Ctrl-C stops all of it" in (tmp_path / "run.log").read_text() or launcher.poll() is not None,
              timeout=60, what="the launcher's summary")
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}" in output and output.count("gunicorn -k gevent -w 1") == 2, output
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
        processes = family(launcher.pid)
        ports = {c.laddr.port for p in processes for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        assert port in ports and len(ports) >= 4, ports  # nginx, two gunicorn processes, Redis
    finally:
        launcher.send_signal(signal.SIGINT)
        assert launcher.wait(30) == 0, (tmp_path / "run.log").read_text()
        log.close()
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for port in ports:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections may linger (TIME_WAIT)
            probe.bind(("127.0.0.1", port))  # OSError if anything still listens there
