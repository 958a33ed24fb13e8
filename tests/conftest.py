"""Fixtures for the classroom hub's tests: the hub as a real process, its pages in Chromium, fake chapters."""
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import psutil
import pytest

from tutorial import CHAPTERS, ROOT
from tutorial.hub import Hub, create_app, pick_port

# The first port the OS hands out for port 0 and for outgoing connections (Linux's default when it cannot be read).
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        FIRST_EPHEMERAL = int(ports.read().split()[0])
except OSError:
    FIRST_EPHEMERAL = 32768


def hub_port():
    """A port for a test hub, below the ports the OS hands out, with its chapters' ports free (hub + NN, + 1NN).

    As in class (5000 + NN): among the OS's ports, another test's server or any outgoing connection could take
    a chapter's port between the hub's probe and the chapter's bind, and that chapter would fail to start.
    """
    while True:
        port = random.randrange(10_000, FIRST_EPHEMERAL - 200)
        if all(pick_port("127.0.0.1", port + offset) == port + offset for offset in (0, *range(1, 11),
                                                                                       *range(101, 111))):
            return port


class HubProcess:
    """``python -m tutorial hub`` as a process, as an instructor starts it; Ctrl-C is ``interrupt()``."""

    # As a shell without job control starts `command &`: SIGINT ignored, a disposition children inherit.
    IN_BACKGROUND = ["-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                           "runpy.run_module('tutorial', run_name='__main__')"]

    def __init__(self, *args, env=None, background=False):
        self.command = [sys.executable, *(self.IN_BACKGROUND if background else ["-m", "tutorial"]), "hub", *args]
        self.port = hub_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Every process the hub starts inherits this mark: with several test workers, a port another
        # worker's server took after the hub stopped is theirs, not a leftover of this hub.
        self.mark = secrets.token_hex(8)
        self.env = {**os.environ, "PORT": str(self.port), "PYTHONUNBUFFERED": "1", "TUTORIAL_TEST_HUB": self.mark,
                    **(env or {})}
        self.process = None
        self.family = set()  # the chapters and their helpers, as last seen
        self.log = tempfile.TemporaryFile(mode="w+", prefix="hub-")

    def __enter__(self):
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env,
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def listens_on(self, port):
        """Whether a process this hub started (its mark in the environment) is listening on ``port``."""
        for connection in psutil.net_connections("tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                try:
                    return psutil.Process(connection.pid).environ().get("TUTORIAL_TEST_HUB") == self.mark
                except psutil.Error:
                    return False
        return False

    def chapters(self, timeout=60):  # ten chapters, a Redis and a second server start at once on two cores
        """The chapters' statuses, once every chapter has started or failed (polled with a deadline)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the hub exited:\n{self.output()}"
            try:
                with urllib.request.urlopen(f"{self.url}/api/chapters", timeout=1) as response:
                    chapters = json.load(response)
                if all(chapter["status"] in ("running", "failed") for chapter in chapters):
                    self.family.update(psutil.Process(self.process.pid).children(recursive=True))
                    return chapters
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet
            time.sleep(0.1)  # not synchronisation: the pause between two polls
        raise TimeoutError(f"the hub's chapters did not settle within {timeout}s:\n{self.output()}")

    def ports(self):
        """The hub's port and every chapter's."""
        return [self.port] + [urlsplit(chapter["url"]).port for chapter in self.chapters()]

    def interrupt(self, timeout=30):
        """Ctrl-C, and the hub's exit status once it has stopped."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def output(self):
        """Everything the hub printed so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def __exit__(self, *exc_info):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Even a broken hub must not leave chapters behind: Ctrl-C whatever of its family survived it, then kill.
        survivors = [process for process in self.family if process.is_running()]
        for process in survivors:
            process.send_signal(signal.SIGINT)
        for process in psutil.wait_procs(survivors, timeout=10)[1]:
            process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def hub():
    """The hub running as a process on a free port, every chapter started (or failed)."""
    with HubProcess() as running:
        failed = [chapter["number"] for chapter in running.chapters() if chapter["status"] != "running"]
        assert not failed, f"chapters {failed} did not start:\n{running.output()}"
        yield running


@pytest.fixture
def start_hub():
    """Start a hub process: ``with start_hub(*arguments, env=...) as hub``; it stops when the block ends."""
    return HubProcess


@pytest.fixture
def open_hub_page(local_pages, hub):
    """Open a hub page in a fresh browser context, allowed to reach only this machine, failing on JS errors."""
    pages = local_pages("http://127.0.0.1:")
    return lambda path="/", **options: pages.open(hub.url + path, websocket=False, **options)


FAKE_CHAPTERS = {
    "01_first/app.py": '"""01 · First: the first step (notes: 第一步)."""\nimport os\n\nx = 1\n',
    "01_first/templates/index.html": "<h1>First</h1>\n",
    "01_first/README.md": (
        "# 01 · First\n\n<script>alert('readme')</script>\n\n"
        "| event | payload |\n|---|---|\n| `greeting` | `{text}` |\n"
    ),
    "02_second/app.py": '"""A chapter being written."""\nimport os\n\nx = 2\nshown = "<b>bold</b>"\n',
    "02_second/templates/index.html": "<h1>First</h1>\n",
}


@pytest.fixture
def fake_chapters(tmp_path):
    """Two small chapter folders: a README with raw HTML, and code with HTML in a string."""
    for path, text in FAKE_CHAPTERS.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    return [tmp_path / "01_first", tmp_path / "02_second"]


@pytest.fixture
def real_hub():
    """A hub of the real chapters, none of them started: its pages render in-process."""
    return Hub(CHAPTERS)


@pytest.fixture
def real_hub_client(real_hub):
    """Flask's test client for ``real_hub``."""
    return create_app(real_hub).test_client()


@pytest.fixture
def hub_client(fake_chapters):
    """Flask's test client for a hub of the fake chapters, none of them started."""
    return create_app(Hub(fake_chapters)).test_client()
