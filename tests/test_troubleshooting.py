"""TROUBLESHOOTING.md, entry by entry: each error shown the wrong way, and gone the right way.

Most use a throwaway app written to a temporary folder, served by gunicorn twice as
production runs it (the gevent worker and the threaded one) on one private Redis.
"""
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio
from flask import Flask, request
from flask_socketio import SocketIO, emit, send

from groundwork.redis_server import PrivateRedis
from tutorial import ROOT, chapter_dir
from tutorial.servers import WORKERS, Gunicorn, Nginx, ServerProcess, free_port
from tutorial.testing import next_event

APP = '''\
"""A throwaway Flask-SocketIO app: just enough to show one error."""
import os

import engineio.payload
from flask import Flask
from flask_socketio import SocketIO

if "MAX_DECODE_PACKETS" in os.environ:  # the fix for "Too many packets in payload", where a test applies it
    engineio.payload.Payload.max_decode_packets = int(os.environ["MAX_DECODE_PACKETS"])

app = Flask(__name__)
socketio = SocketIO(app, async_mode=os.environ["ASYNC_MODE"], message_queue=os.environ.get("MESSAGE_QUEUE"))


@app.get("/")
def index():
    return "ok"


@socketio.on("echo")
def echo(data):
    return data


if __name__ == "__main__":
    socketio.run(app, port=int(os.environ["PORT"]))
'''
NGINX_CONF = (chapter_dir("10") / "nginx.conf").read_text()
ENGINEIO = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder holding the throwaway app.py."""
    path = tmp_path_factory.mktemp("throwaway")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def redis_url():
    """A private Redis for this module."""
    server = PrivateRedis().start()
    yield server.url
    server.remove()


@pytest.fixture(scope="module")
def processes(folder, redis_url):
    """The throwaway app under gunicorn, one worker each: gevent, then threads; one Redis message queue."""
    started = [Gunicorn(folder, worker, env={"MESSAGE_QUEUE": redis_url}, graceful_timeout=1, app="app:app")
               for worker in WORKERS]
    try:
        with ThreadPoolExecutor() as starting:
            list(starting.map(lambda server: server.start(), started))
        yield started
    finally:
        with ThreadPoolExecutor() as stopping:
            list(stopping.map(lambda server: server.stop(), started))


def run(folder, *command, **env):
    """Run a command in the throwaway app's folder, as a learner would from a terminal (but no terminal)."""
    return subprocess.run(command, cwd=folder, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def connected(url):
    """A live client over WebSocket (the caller disconnects it)."""
    sio = socketio.SimpleClient()
    sio.connect(url, transports=["websocket"], wait_timeout=5)
    return sio


def open_session(url, **headers):
    """Engine.IO's first long-polling request: the response, and the session id it opened (or None)."""
    response = requests.get(url + ENGINEIO, headers=headers, timeout=5)
    return response, response.ok and json.loads(response.text[1:])["sid"]


def test_invalid_session_without_sticky_sessions(processes):
    upstreams = [server.url.removeprefix("http://") for server in processes]
    with Nginx(upstreams, config=NGINX_CONF.replace("ip_hash;", "")) as round_robin:
        _, sid = open_session(round_robin.url)
        # Socket.IO's next request (its CONNECT packet) reaches the other process.
        response = requests.post(f"{round_robin.url}{ENGINEIO}&sid={sid}", data="40", timeout=5)
        assert (response.status_code, response.json()) == (400, f"Invalid session {sid}")
    assert any(f"Invalid session {sid}" in server.output() for server in processes)
    with Nginx(upstreams) as sticky:  # the chapter's nginx.conf: ip_hash
        _, sid = open_session(sticky.url)
        assert requests.post(f"{sticky.url}{ENGINEIO}&sid={sid}", data="40", timeout=5).text == "OK"


def test_not_an_accepted_origin_when_the_proxy_rewrites_the_host(processes):
    upstreams = [server.url.removeprefix("http://") for server in processes]
    with Nginx(upstreams, config=NGINX_CONF.replace("proxy_set_header Host $http_host;", "")) as proxy:
        response, sid = open_session(proxy.url, Origin=proxy.url)  # the page's origin: nginx's address
        assert (response.status_code, response.json(), sid) == (400, "Not an accepted origin.", False)
    assert any(f"{proxy.url} is not an accepted origin." in server.output() for server in processes)
    with Nginx(upstreams) as proxy:  # the chapter's nginx.conf passes the Host on
        response, sid = open_session(proxy.url, Origin=proxy.url)
        assert response.status_code == 200 and sid
    # TLS ends at the proxy: the page is https://, the app hears http, unless the proxy says X-Forwarded-Proto.
    tls = {"Host": "notify.example.org", "Origin": "https://notify.example.org"}
    assert open_session(processes[0].url, **tls)[0].status_code == 400
    assert open_session(processes[0].url, **tls, **{"X-Forwarded-Proto": "https"})[0].status_code == 200


def test_a_socket_io_2_client_speaks_an_unsupported_protocol(processes):
    """Socket.IO JS 1.x and 2.x speak Engine.IO 3 (EIO=3); Flask-SocketIO 5 speaks 4 only."""
    old = requests.get(processes[0].url + ENGINEIO.replace("EIO=4", "EIO=3"), timeout=5)
    unsupported = "The client is using an unsupported version of the Socket.IO or Engine.IO protocols"
    assert (old.status_code, old.json()) == (400, unsupported)
    assert unsupported in processes[0].output()
    assert open_session(processes[0].url)[0].status_code == 200


def test_werkzeug_refuses_to_run_in_production(processes):
    """socketio.run() in threading mode with no terminal (a service, a container, nohup): Werkzeug refuses."""
    app = Flask(__name__)
    with pytest.raises(RuntimeError, match=r"^The Werkzeug web server is not designed to run in production\."):
        SocketIO(app, async_mode="threading").run(app, port=free_port())
    assert requests.get(processes[1].url, timeout=5).text == "ok"  # an app like it, under gunicorn's threads


def test_gunicorn_has_no_eventlet_worker(folder, processes):
    eventlet = run(folder, sys.executable, "-m", "gunicorn", "-k", "eventlet", "app:app", ASYNC_MODE="eventlet")
    assert eventlet.returncode != 0
    assert "Error: class uri 'eventlet' invalid or not found" in eventlet.stderr
    assert "Using worker: gevent" in processes[0].output()  # -k gevent instead
    assert requests.get(processes[0].url, timeout=5).text == "ok"


EMITTER = '''\
"""Another process (a cron job, a worker) emitting to the server's clients, three ways."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask_socketio import SocketIO

url = sys.argv[1]
SocketIO(message_queue=url, channel="socketio", async_mode="threading").emit("news", "another channel")
SocketIO(Flask(__name__), async_mode="threading").emit("news", "no message queue")
SocketIO(message_queue=url, async_mode="threading").emit("news", "the server's queue and channel")
'''


def test_an_emit_from_another_process_needs_the_same_message_queue_and_channel(folder, redis_url, processes):
    (folder / "emitter.py").write_text(EMITTER)
    sio = connected(processes[1].url)
    try:
        assert run(folder, sys.executable, "emitter.py", redis_url).returncode == 0
        # Redis delivers a channel's messages in order: had the first one arrived, it would come first.
        assert next_event(sio, "news") == "the server's queue and channel"
    finally:
        sio.disconnect()


def test_redis_under_gevent_needs_monkey_patching(folder, redis_url, processes):
    port = free_port()
    unpatched = ServerProcess([sys.executable, "app.py"], folder, port,
                              {"ASYNC_MODE": "gevent", "MESSAGE_QUEUE": redis_url, "PORT": str(port)})
    with unpatched:
        with pytest.raises(socketio.exceptions.ConnectionError):
            connected(unpatched.url)
        assert unpatched.wait_for_output("RuntimeError: Redis requires a monkey patched socket library "
                                         "to work with gevent")
    connected(processes[0].url).disconnect()  # gunicorn's gevent worker patches before it loads the app


def test_a_background_task_emits_with_socketio_emit_not_emit():
    app = Flask(__name__)
    sio = SocketIO(app, async_mode="threading")
    errors = []

    @sio.on("start")
    def start(way):
        sid = request.sid

        def with_emit():
            try:
                emit("tick", "from emit()")
            except RuntimeError as error:
                errors.append(str(error))

        def with_socketio_emit():
            sio.emit("tick", "from socketio.emit()", to=sid)

        sio.start_background_task(with_emit if way == "emit" else with_socketio_emit).join()

    client = sio.test_client(app)
    client.emit("start", "emit")
    assert errors[0].startswith("Working outside of request context.") and not client.get_received()
    client.emit("start", "socketio.emit")
    assert [message["args"] for message in client.get_received()] == [["from socketio.emit()"]]


def test_send_to_another_namespace_needs_that_namespace_sid():
    """A client's connection to each namespace has its own sid: send() defaults to the one of this event."""
    app = Flask(__name__)
    sio = SocketIO(app, async_mode="threading")
    chat_sids = {}

    @sio.on("connect", namespace="/chat")
    def connect(auth):
        chat_sids[auth["name"]] = request.sid

    @sio.on("ping")
    def ping(name, way):
        if way == "default":
            send("pong", namespace="/chat")  # to=request.sid: the sid in "/", unknown in "/chat"
        else:
            send("pong", namespace="/chat", to=chat_sids[name])

    client = sio.test_client(app)
    client.connect("/chat", auth={"name": "ann"})
    client.emit("ping", "ann", "default")
    assert client.get_received("/chat") == []
    client.emit("ping", "ann", "the /chat sid")
    assert [message["args"] for message in client.get_received("/chat")] == ["pong"]


def acknowledged_burst(url, count=100):
    """``count`` acknowledged emits at once from a client on long-polling: (the client, the answers so far,
    an event set once every one is answered). The caller disconnects the client."""
    sio, answered, everything = socketio.Client(reconnection=False), [], threading.Event()

    def acknowledged(data):
        answered.append(data)
        if len(answered) == count:
            everything.set()

    sio.connect(url, transports=["polling"], wait_timeout=5)
    for i in range(count):
        sio.emit("echo", i, callback=acknowledged)
    return sio, answered, everything


def test_too_many_packets_in_payload_drops_a_burst_over_long_polling(folder, processes):
    """A client on long-polling packs every queued packet into one POST (python-engineio's client as the
    JavaScript one does); python-engineio decodes at most 16 per POST unless told otherwise."""
    sio, answered, everything = acknowledged_burst(processes[1].url)  # the gevent worker drops it the same way
    try:
        assert processes[1].wait_for_output("ValueError: Too many packets in payload")
        assert len(answered) < 100 and not everything.is_set()  # a dropped POST's packets never come back
    finally:
        sio.disconnect()
    with Gunicorn(folder, "gthread", env={"MAX_DECODE_PACKETS": "64000"}, graceful_timeout=1, app="app:app") as fixed:
        sio, answered, everything = acknowledged_burst(fixed.url)
        try:
            assert everything.wait(10), f"{len(answered)} of 100 answered"
        finally:
            sio.disconnect()
        assert "Too many packets in payload" not in fixed.output()


def test_every_entry_is_tested():
    """TROUBLESHOOTING.md names this module's test for each of its entries."""
    page = (ROOT / "TROUBLESHOOTING.md").read_text()
    entries = page.count("\n## ")
    named = [name for name in globals() if name.startswith("test_") and name != "test_every_entry_is_tested"]
    assert entries == len(named) and all(f"`{name}`" in page for name in named)
