"""Chapter 10 as a learner runs it alone: the commands it prints, its outage demo, a clean Ctrl-C."""
import os
import pty
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import socketio
from markdown_it import MarkdownIt

from tutorial import ASYNC_MODES, ROOT
from tutorial.servers import ChapterServer, ServerProcess, free_port
from tutorial.testing import next_event

HERE = Path(__file__).parent
# What a shell finds without an activated virtual environment: no `python` with this project's packages.
BARE_PATH = "/usr/local/bin:/usr/bin:/bin"
ALARMS = ("lost Redis", "Cannot receive", "Cannot publish", "Traceback")


def two_free_ports():
    """A port for the first server whose next one, where it tells the second to listen, is free too."""
    while True:
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


@pytest.fixture
def alone():
    """Chapter 10 started as ``python app.py`` with no REDIS_URL, as a learner does, in a terminal of its own."""
    started, terminals = [], []

    def alone(async_mode, port=None):
        keyboard, terminal = pty.openpty()
        terminals.extend([keyboard, terminal])
        server = ChapterServer(HERE.name, async_mode, port=port, env={"REDIS_URL": ""})
        server.stdin = terminal
        started.append(server)
        server.start()
        server.keyboard = keyboard
        [server.redis] = psutil.Process(server.process.pid).children()
        return server

    yield alone
    for server in started:
        running = psutil.Process(server.process.pid).children() if server.process.poll() is None else []
        server.stop()
        for process in running:  # a Redis its server failed to stop: not left behind by a failing test
            if process.is_running():
                process.kill()
    for fd in terminals:
        os.close(fd)


def printed_commands(output):
    """The folder the server says its commands are for, and the commands: {what: command line}."""
    folder = re.search(r"^ \* In another terminal, in (.+):$", output, re.MULTILINE).group(1)
    commands = dict(re.findall(r"^   (a second server|a notification): +(.+)$", output, re.MULTILINE))
    return folder, commands


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_the_printed_commands_run_as_printed_without_a_virtual_environment(alone, connect, name, async_mode):
    first = alone(async_mode, port=two_free_ports())
    folder, commands = printed_commands(first.output())
    assert set(commands) == {"a second server", "a notification"}
    password = Path(HERE, "instance", "redis_url").read_text().split(":")[2].split("@")[0]
    assert password not in first.output()

    second = ServerProcess(["sh", "-c", commands["a second server"]], folder, port=first.port + 1,
                           env={"PATH": BARE_PATH})
    try:
        second.start()
        tab = connect(second, "bob")  # the name the printed notification is for
        next_event(tab, "replay")
        published = subprocess.run(commands["a notification"], shell=True, cwd=folder, capture_output=True,
                                   text=True, env={**os.environ, "PATH": BARE_PATH}, timeout=30)
        assert published.returncode == 0, published.stderr
        assert next_event(tab, "notification")["text"] == "hello"
    finally:
        second.stop()


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
@pytest.mark.parametrize("how", ["Ctrl-C", "kill"])
def test_ctrl_c_or_kill_stops_it_and_its_redis_quietly(alone, connect, name, async_mode, how):
    server = alone(async_mode)
    assert server.redis.name() == "redis-server"
    next_event(connect(server, name("bob")), "status")  # its forwarder and the message queue's listener run
    if how == "Ctrl-C":
        server.stop()  # SIGINT to its process group, Redis included, as Ctrl-C in its terminal does
    else:
        server.process.send_signal(signal.SIGTERM)  # to app.py alone: it must stop its Redis itself
        server.process.wait(10)
        server.stop()
    assert server.process.returncode == 0
    assert not psutil.pid_exists(server.redis.pid)
    assert not any(alarm in server.output() for alarm in ALARMS), server.output()
    assert not (HERE / "instance" / "redis_url").exists()


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_the_outage_demo_stops_and_starts_redis_and_the_log_says_so_once_each(alone, connect, log_in_over_http, name,
                                                                               async_mode):
    server = alone(async_mode)
    assert "press Enter here to stop this Redis" in server.output()
    bob = name("bob")
    tab, cookie = connect(server, bob), log_in_over_http(server, bob)
    assert next_event(tab, "status") == {"available": True}

    os.write(server.keyboard, b"\n")
    unavailable = {"available": False, "error": "notifications unavailable: cannot reach Redis"}
    assert next_event(tab, "status") == unavailable
    assert tab.call("send_notification", {"to": bob, "text": "while away", "key": "away0001"}, timeout=5)["retry"]
    late = socketio.SimpleClient()  # a tab that connects meanwhile: the answers to it fail to reach the queue
    late.connect(server.url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=5)
    try:
        assert next_event(late, "status") == unavailable
    finally:
        late.disconnect()

    os.write(server.keyboard, b"\n")
    next_event(tab, "resync", timeout=10)
    answer = tab.call("send_notification", {"to": bob, "text": "back", "key": "back0001"}, timeout=5)
    assert "id" in answer, answer
    assert next_event(tab, "notification")["text"] == "back"

    server.stop()
    log = server.output()
    assert (log.count("lost Redis"), log.count("Redis is back")) == (1, 1), log
    assert not any(alarm in log for alarm in ALARMS[1:]), log


def test_a_process_that_imported_the_app_exits_quietly():
    """As pytest does with in-process apps on their private Redis: at exit, each forwarder stops before its Redis."""
    made = subprocess.run([sys.executable, "-c", "import app\nfor _ in range(2): app.create_app(MESSAGE_QUEUE=False)"],
                          cwd=HERE, env={**os.environ, "REDIS_URL": ""}, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert not any(alarm in made.stdout + made.stderr for alarm in ALARMS), made.stderr


# The README's commands, in the form that works after `make setup` and nothing else.

CHAPTER_PAGES = sorted(HERE.glob("*.md"))
PROGRAMS = {"python", "python3", "pytest", "gunicorn", "flask", "jupyter"}  # installed in .venv only


def shell_commands(page):
    """The command lines of a page's ``bash`` blocks, comments dropped."""
    blocks = [token.content for token in MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
              if token.type == "fence" and token.info == "bash"]
    return [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def programs(line):
    """The programs a command line runs: the first word of each command, after its variable assignments."""
    found = []
    for command in re.split(r"&&|\|\||;|\|", line):
        words = [w for w in shlex.split(command) if not re.match(r"^\w+=", w)]
        if words and words[0] not in ("do", "then", "for", "until", "while", "done", "fi"):
            found.append(words[0])
    return found


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[p.name for p in CHAPTER_PAGES])
def test_the_pages_run_python_tools_from_the_virtual_environment(page):
    """`python app.py` fails in a fresh terminal (no module named redis): the pages say `../.venv/bin/python`."""
    for line in shell_commands(page):
        for program in programs(line):
            if Path(program).name in PROGRAMS:
                assert program in (".venv/bin/" + Path(program).name, "../.venv/bin/" + Path(program).name), line
                assert (ROOT / ".venv/bin" / Path(program).name).exists(), line
