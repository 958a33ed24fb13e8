"""groundwork, tested once and thoroughly, against the smallest app that stands on it (``tests/guarded/app.py``).

Both ways: every attack below the handlers is refused (the connection closed or the request answered 400,
one log line, no traceback, the server still serving the others), and every real client gets through
(bursts over long-polling, bytes, reconnections). In-process where the library allows it, then live, as
``python app.py`` in each async mode. Each chapter's own check that it stands on groundwork is in
``tests/test_security.py``.
"""
import json
import os
import random
import socket
import stat
import sys
import threading
import urllib.error
import urllib.request

import pytest
import socketio
import websocket
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface
from flask_socketio import SocketIO

from groundwork import MAX_PACKET, protect
from groundwork.wire import RESERVED_EVENTS, CheckedPacket
from tutorial import ASYNC_MODES, ROOT
from tutorial.servers import ServerProcess, free_port
from tutorial.testing import until

GUARDED = ROOT / "tests" / "guarded"
in_process = pytest.mark.parametrize("chapter", [GUARDED], indirect=True, ids=["guarded"])

DEEP = "[" * 10_000 + "]" * 10_000
# What a client may send below the handlers, each closing its own connection: frames over a WebSocket.
MALFORMED = {
    "an EVENT with no data (42)": ["42"],
    "an EVENT that is an object": ['42{"a":1}'],
    "an EVENT with no name (42[])": ["42[]"],
    "an EVENT with an id and no data (4212)": ["4212"],
    "an EVENT named by a number": ["42[1]"],
    "an empty Socket.IO packet (bare 4)": ["4"],
    "an empty text frame": [""],
    "a binary packet in base64 that is not base64": ["b!!!"],
    "an unknown Socket.IO packet type": ["49"],
    "a CONNECT_ERROR from a client": ['44{"message":"x"}'],
    "JSON that does not parse": ['42["x",'],
    "JSON nested 10,000 deep in an event": ['42["x",' + DEEP + "]"],
    "JSON nested 10,000 deep in an acknowledgement": ["431" + DEEP],
    "too many attachments announced": ['45450-["x",{"_placeholder":true,"num":0}]'],
    "a placeholder past the attachments": ['451-["x",{"_placeholder":true,"num":7}]', b"\x00"],
    "a placeholder numbered by a string": ['451-["x",{"_placeholder":true,"num":"a"}]', b"\x00"],
    "an attachment nobody announced": [b"\x00\x01"],
    "an empty binary frame": [b""],
    # Then the probe's text frame arrives where the attachment belongs: python-socketio would swallow it.
    "a lying attachment count": ['451-["x",{"_placeholder":true,"num":0}]'],
}


# In-process: Flask-SocketIO's test client hands packets to python-socketio, below the Engine.IO layer.

@in_process
@pytest.mark.parametrize("name", RESERVED_EVENTS)
def test_an_event_named_like_socket_ios_own_is_refused_and_runs_no_handler(chapter, client, name):
    before = dict(chapter.lifecycle)
    with pytest.raises(ValueError, match="only Socket.IO itself sends"):
        client.emit(name, {"username": "bob"})
    assert chapter.lifecycle == before


@in_process
@pytest.mark.parametrize("namespace", ["/", "/room"], ids=["decorated", "namespace-class"])
@pytest.mark.parametrize("arguments", [(), (1,), (1, 2, 3)], ids=["none", "one-missing", "one-extra"])
def test_a_wrong_number_of_arguments_is_answered_with_bad_input(chapter, app, namespace, arguments):
    client = chapter.socketio.test_client(app, namespace=namespace)
    problem = "wrong number of arguments: see the events table in README.md"
    assert client.emit("pair", *arguments, namespace=namespace, callback=True) == {"error": problem}
    assert client.get_received(namespace) == [
        {"name": "bad_input", "args": [{"event": "pair", "error": problem}], "namespace": namespace}]
    assert client.emit("pair", 1, 2, namespace=namespace, callback=True) == [1, 2]  # still connected, served


@in_process
@pytest.mark.parametrize("arguments", [(), (1,), (1, 2, 3, 4, 5)])
def test_a_catch_all_handler_gets_every_argument_count(chapter, app, arguments):
    client = chapter.socketio.test_client(app, namespace="/any")
    assert client.emit("anything", *arguments, namespace="/any", callback=True) == ["anything", len(arguments)]
    assert client.get_received("/any") == []


# The frames that reach python-socketio's packet decoder (Engine.IO's type 4, or binary), without Engine.IO's "4".
PACKETS = {name: [frames[0][1:] if isinstance(frames[0], str) else frames[0], *frames[1:]]
           for name, frames in MALFORMED.items()
           if (isinstance(frames[0], bytes) or frames[0].startswith("4")) and name != "a lying attachment count"}


@in_process
@pytest.mark.parametrize("frames", PACKETS.values(), ids=PACKETS.keys())
def test_a_malformed_socket_io_packet_is_a_value_error(chapter, app, frames):
    """ValueError is python-socketio's word for malformed, and the one error the wire guard turns into a refusal:
    what its dispatcher raises, given these frames, is ValueError and nothing else. (The client is left as the
    refusal leaves it: the live test below closes the connection.)"""
    client = chapter.socketio.test_client(app)
    with pytest.raises(ValueError):
        for frame in frames:
            chapter.socketio.server._handle_eio_message(client.eio_sid, frame)


def test_the_unknown_namespace_refusal_carries_a_message_the_javascript_client_reads():
    packet = CheckedPacket(4, data="Unable to connect", namespace="/nowhere")
    assert packet.encode() == '4/nowhere,{"message":"Unable to connect"}'  # CONNECT_ERROR, namespace, data


@in_process
@pytest.mark.parametrize("length", ["abc", "-1", str(MAX_PACKET + 1)])
def test_a_long_polling_post_with_a_length_that_is_no_length_is_refused(app, length, capsys):
    http = app.test_client()
    sid = json.loads(http.get("/socket.io/?EIO=4&transport=polling").text[1:])["sid"]
    answer = http.post(f"/socket.io/?EIO=4&transport=polling&sid={sid}", data="40",
                       environ_overrides={"CONTENT_LENGTH": length})
    assert answer.status_code == 400
    assert capsys.readouterr().out.count(" * refused ") == 1


@in_process
def test_whatever_else_fails_below_the_app_is_answered_without_internals(chapter, app, monkeypatch, capsys):
    """The last line: eventlet's server (debug=True, which socketio.run cannot turn off) would send the
    traceback, file paths included, to the client."""
    def failing(environ, start_response):
        raise KeyError("/a/path/of/this/machine.py")

    monkeypatch.setattr(chapter.socketio.server.eio, "handle_request", failing)
    answer = app.test_client().get("/socket.io/?EIO=4&transport=polling")
    assert (answer.status_code, answer.text) == (400, "Bad Request")
    out = capsys.readouterr().out
    assert out.count(" * refused ") == 1 and "Traceback" not in out, out


# The session identity: a chapter's own key, cookie name and signature.

def chapter_app(folder, **config):
    """A Flask app in ``folder`` (its name the chapter's), given groundwork's identity; /login/<name> opens a
    session, /whoami reads it."""
    app = Flask(folder.name, root_path=str(folder), instance_path=str(folder / "instance"))
    app.config.update(config)
    protect(app, SocketIO(app, async_mode="threading"))

    @app.post("/login/<name>")
    def login(name):
        session["username"] = name
        return "ok"

    @app.get("/whoami")
    def whoami():
        return session.get("username", "nobody")

    return app


def cookie(app, name):
    """The session cookie ``app`` sets for ``name`` after a login: (cookie name, value)."""
    http = app.test_client()
    http.post(f"/login/{name}")
    found = http.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return found.key, found.value


def test_the_random_key_is_kept_readable_by_its_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    first = chapter_app(tmp_path / "09_testing")
    kept = tmp_path / "09_testing" / "instance" / "secret_key"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert first.secret_key == kept.read_text().strip() and len(first.secret_key) == 64
    kept.chmod(0o644)  # as an older version wrote it
    assert chapter_app(tmp_path / "09_testing").secret_key == first.secret_key  # kept across restarts
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_cookie_from_one_chapter_opens_no_session_in_another_even_with_the_same_key(tmp_path):
    """Browsers send every port's cookies to every port of a host: the classroom's hub serves all chapters there."""
    chapter_09, chapter_10 = (chapter_app(tmp_path / name, SECRET_KEY="one key for the classroom")
                              for name in ("09_testing", "10_redis_pubsub"))
    name, value = cookie(chapter_09, "publisher")
    assert name != chapter_10.config["SESSION_COOKIE_NAME"]  # in a browser, a login here keeps the other's cookie
    own = chapter_09.test_client()
    own.set_cookie(name, value)
    assert own.get("/whoami").text == "publisher"  # the cookie works where it was made
    for as_named in (name, chapter_10.config["SESSION_COOKIE_NAME"]):  # as sent, and renamed by hand
        other = chapter_10.test_client()
        other.set_cookie(as_named, value)
        assert other.get("/whoami").text == "nobody", as_named


def test_a_cookie_signed_with_the_old_public_dev_key_opens_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    app = chapter_app(tmp_path / "09_testing")
    assert app.secret_key not in (None, "", "dev")
    public = Flask("public")
    public.secret_key = "dev"
    forged = SecureCookieSessionInterface().get_signing_serializer(public).dumps({"username": "bob"})
    for name in ("session", app.config["SESSION_COOKIE_NAME"]):
        http = app.test_client()
        http.set_cookie(name, forged)
        assert http.get("/whoami").text == "nobody", name


# Live: tests/guarded/app.py as a process, once per async mode.

@pytest.fixture(scope="module", params=ASYNC_MODES)
def guarded_server(request):
    """The guarded app as ``python app.py``, in one async mode."""
    port = free_port()
    env = {"PORT": str(port), "ASYNC_MODE": request.param, "FLASK_SECRET_KEY": "test"}
    with ServerProcess([sys.executable, "app.py"], GUARDED, port, env) as running:
        running.async_mode = request.param
        yield running


@pytest.fixture
def log(guarded_server):
    """What the server logs from now on."""
    start = len(guarded_server.output_after(0))
    return lambda: guarded_server.output_after(start).decode(errors="replace")


@pytest.fixture(scope="module")
def bystander(guarded_server):
    """A client connected all along, over WebSocket."""
    sio = socketio.SimpleClient()
    sio.connect(guarded_server.url, transports=["websocket"], wait_timeout=5)
    yield sio
    sio.disconnect()


@pytest.fixture
def witness(bystander):
    """A client connected before a test's attack, to show the server still serves the others after it."""
    yield bystander
    assert bystander.call("pair", ("still", "served"), timeout=5) == ["still", "served"]


@pytest.fixture
def engine(guarded_server):
    """Open raw Engine.IO WebSockets to the live server (their open packet read); all closed at the end."""
    opened = []

    def engine():
        ws = websocket.WebSocket()
        opened.append(ws)
        ws.connect(guarded_server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                   timeout=5, origin=guarded_server.url)
        assert ws.recv().startswith("0")
        return ws

    yield engine
    for ws in opened:
        ws.shutdown()  # no closing handshake: close() waits for one the server may have sent already


def answer_to_probe(ws):
    """Ask to join a namespace the app does not have, then read what the server sends, frame by frame, until
    it answers or closes the connection: (everything it sent, as text; whether it closed). A wedged
    connection, which does neither, fails the test (the socket's time-out). Bytes that are not a
    WebSocket frame (an HTTP error page written over the WebSocket) count as closing it."""
    sock, texts = ws.sock, []
    try:
        ws.send("40/probe,")
    except OSError:
        pass  # it has closed the connection already: read what it sent before

    def read(count):
        data = b""
        while len(data) < count and (chunk := sock.recv(count - len(data))):
            data += chunk
        return data

    while True:
        head = read(2)
        if len(head) < 2 or head[0] & 0x70 or head[0] & 0x0F not in (0, 1, 2, 8, 9, 10):
            return "".join(texts) + (head + sock.recv(65536)).decode("latin-1"), True
        length = head[1] & 0x7F
        if length > 125:
            length = int.from_bytes(read(2 if length == 126 else 8), "big")
        payload = read(length)
        texts.append(payload.decode("latin-1"))
        if head[0] & 0x0F == 8:
            return "".join(texts), True
        if payload.startswith(b"44/probe,"):
            return "".join(texts), False


def assert_refused_once(log):
    """The server logged its refusal in one line, and no traceback."""
    text = log()
    assert text.count(" * refused ") == 1 and "Traceback" not in text, text


def assert_no_internals(text):
    """No traceback and no file path in what a client received."""
    assert "Traceback" not in text and str(ROOT) not in text and ".py" not in text, text


@pytest.mark.parametrize("frames", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_frame_closes_its_connection_with_one_log_line(engine, witness, log, frames):
    ws = engine()
    ws.send("40")
    assert ws.recv().startswith("40")
    for frame in frames:
        ws.send_binary(frame) if isinstance(frame, bytes) else ws.send(frame)
    received, closed = answer_to_probe(ws)
    assert closed
    assert_no_internals(received)
    until(lambda: " * refused " in log())
    assert_refused_once(log)


@pytest.mark.parametrize("name", RESERVED_EVENTS)
def test_an_event_named_like_socket_ios_own_closes_its_connection_and_runs_no_handler(engine, witness, log, name):
    before = witness.call("stats", timeout=5)
    ws = engine()
    ws.send("40")
    assert ws.recv().startswith("40")
    ws.send(f'42{json.dumps([name, {"username": "bob"}])}')
    assert answer_to_probe(ws)[1]
    # The connection's real end runs the disconnect handler once: a client's "disconnect" event ran it no more.
    until(lambda: witness.call("stats", timeout=5)["disconnect"] > before["disconnect"])
    assert witness.call("stats", timeout=5) == {"connect": before["connect"] + 1,
                                                "disconnect": before["disconnect"] + 1}
    assert_refused_once(log)


def polling(server, method="GET", body=None, sid=None):
    """A long-polling request: (status, body)."""
    url = f"{server.url}/socket.io/?EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    request = urllib.request.Request(url, body, {"Content-Type": "text/plain;charset=UTF-8"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def polling_session(server):
    """A long-polling session connected to the default namespace: its sid."""
    sid = json.loads(polling(server)[1][1:])["sid"]
    assert polling(server, "POST", b"40", sid) == (200, "OK")
    assert polling(server, sid=sid)[1].startswith("40")
    return sid


@pytest.mark.parametrize("body", [b"b!!!", b"4\xff\xfe", b"42[]\x1e9", b"9", b"4\x1e", b""],
                         ids=["b-not-base64", "not-utf-8", "a-bad-packet-after-a-good-one", "type-9", "empty-packet",
                              "empty"])
def test_a_malformed_long_polling_body_is_refused_with_one_log_line(guarded_server, witness, log, body):
    sid = polling_session(guarded_server)
    status, answer = polling(guarded_server, "POST", body, sid)
    assert_no_internals(answer)
    if status == 200:  # python-engineio answers before dispatching: the session is closed instead
        assert polling(guarded_server, sid=sid)[0] == 400
    else:
        assert status == 400
    until(lambda: " * refused " in log())
    assert_refused_once(log)


@pytest.mark.parametrize("length", ["abc", "-1", str(MAX_PACKET + 1)])
def test_a_long_polling_post_with_a_bad_length_is_answered_at_once(guarded_server, witness, log, length):
    """Answered while the client still holds its connection open: no worker waits for a body that never comes."""
    sid = polling_session(guarded_server)
    with socket.create_connection(("127.0.0.1", guarded_server.port), timeout=5) as raw:
        raw.sendall(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: text/plain\r\nContent-Length: {length}\r\n\r\n40".encode())
        answer = raw.recv(65536).decode(errors="replace")
    assert answer.startswith(("HTTP/1.0 400", "HTTP/1.1 400")), answer
    assert_no_internals(answer)
    text = log()
    assert "Traceback" not in text, text
    # eventlet's own server refuses a length that is not a number before the app sees the request.
    assert text.count(" * refused ") == (0 if guarded_server.async_mode == "eventlet" and length in ("abc", "-1")
                                         else 1), text


def test_an_oversized_packet_closes_only_its_connection(engine, witness, log):
    ws = engine()
    ws.send("42" + json.dumps(["pair", "x" * MAX_PACKET, 1]))
    received, closed = answer_to_probe(ws)
    assert closed
    assert_no_internals(received)
    assert "Traceback" not in log()


def test_an_unknown_namespace_is_refused_with_a_message(engine):
    """The JavaScript client shows ``connect_error``'s ``message``: python-socketio sends a bare string."""
    received, closed = answer_to_probe(engine())
    assert not closed and '44/probe,{"message":"Unable to connect"}' in received


# What real clients send always passes.

def leave(sio):
    """End a ``socketio.Client``'s connection from the server's side, as a client's ``disconnect()`` on
    long-polling may not: python-engineio's client drops its CLOSE when a POST is still in flight, then waits
    for its pending GET until the next ping, 25 s (seen without groundwork too; the JavaScript client waits
    for nothing)."""
    sio.emit("bye")
    until(lambda: not sio.connected and sio.eio.state == "disconnected")


@pytest.mark.parametrize("count", [30, 100])
def test_a_burst_of_acknowledged_emits_over_long_polling_is_answered_in_full(guarded_server, log, count):
    """python-engineio's client, like the JavaScript one, packs every queued packet into one POST."""
    sio = socketio.Client(reconnection=False)
    answered, done = [], threading.Event()

    def acknowledged(*answer):
        answered.append(answer)
        if len(answered) == count:
            done.set()

    sio.connect(guarded_server.url, transports=["polling"], wait_timeout=5)
    try:
        for i in range(count):
            sio.emit("pair", (i, "x"), callback=acknowledged)
        assert done.wait(10), f"{len(answered)} of {count} answered"
        assert sorted(answer[0][0] for answer in answered) == list(range(count))
        assert sio.connected and sio.transport() == "polling"
    finally:
        leave(sio)
    assert "refused" not in log() and "Too many packets" not in log()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_bytes_arrive_as_bytes_alone_and_inside_an_object(guarded_server, log, transport):
    sio = socketio.Client(reconnection=False)
    sio.connect(guarded_server.url, transports=[transport], wait_timeout=5)
    try:
        assert sio.call("describe", b"\x00\x01\xff", timeout=5) == {"value": "bytes"}
        assert sio.call("describe", {"data": b"\x00" * 1000, "text": "hi"}, timeout=5) == {"data": "bytes",
                                                                                           "text": "str"}
    finally:
        leave(sio)
    assert "refused" not in log()


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_client_reconnects_and_is_served_each_time(guarded_server, log, transport):
    sio = socketio.Client(reconnection=False)
    sids = set()
    for _ in range(3):
        sio.connect(guarded_server.url, transports=[transport], wait_timeout=5)
        sids.add(sio.get_sid())
        assert sio.call("pair", (1, 2), timeout=5) == [1, 2]
        leave(sio)
    assert len(sids) == 3
    assert "refused" not in log()


def test_a_fuzz_of_frames_and_long_polling_bodies_leaves_no_traceback(guarded_server, engine, witness, log):
    """Valid packets cut and mutated at random (a fixed seed: a failure replays), over both transports."""
    rng = random.Random(20)
    valid = ['40', '42["pair",1,2]', '421["pair",1,2]', '451-["describe",{"_placeholder":true,"num":0}]',
             '40/room,', '42/room,["pair",1,2]', '43/any,1[]', '41', '2', '3', '6', '5']
    alphabet = '0123456789b[]{}",-/:_placeholder\x1e\x00\xff\\'

    def mutated():
        text = rng.choice(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice([rng.choice(alphabet), "", rng.choice(valid)]) + text[at + 1:]
        return text

    for _ in range(60):
        ws = engine()
        for _ in range(5):
            frame = mutated()
            try:
                ws.send_binary(frame.encode("latin-1")) if rng.random() < 0.2 else ws.send(frame)
            except OSError:
                break  # closed by the server: the next connection carries on
        sid = polling_session(guarded_server)
        # Half of them Engine.IO MESSAGEs, to reach Socket.IO's decoder past the long-polling check.
        body = "\x1e".join(("4" if rng.random() < 0.5 else "") + mutated() for _ in range(rng.randint(1, 4)))
        assert_no_internals(polling(guarded_server, "POST", body.encode(), sid)[1])
    with urllib.request.urlopen(guarded_server.url, timeout=5) as page:
        assert page.status == 200
    assert "Traceback" not in log(), log()


def test_no_test_above_left_a_traceback_in_the_log(guarded_server):
    """Module-wide (this test runs last for each async mode): whatever a client sent, the log is clean."""
    assert "Traceback" not in guarded_server.output(), guarded_server.output()
    assert os.path.isdir(GUARDED) and not (GUARDED / "instance").exists()  # FLASK_SECRET_KEY: no key file written
