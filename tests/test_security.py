"""Every chapter, safe by default: what any client may send is answered, and nothing it sends runs what it should not.

Event names come from each app's registered handlers, never from a list, so a new
handler is checked as soon as it exists. Only how a client gets in (auth, a login)
is listed here, per chapter.
"""
import inspect
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import websocket
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface
from wire_guard import MAX_PACKET

from tutorial import ASYNC_MODES, CHAPTERS, ROOT
from tutorial.servers import ChapterServer

LIFECYCLE = ("connect", "disconnect")
# How a client gets in, where a chapter asks: auth per namespace, or a form posted to /login.
AUTH = {"02_connect": {"/test": {"name": "Ana"}}, "06_rooms": {"/": {"username": "ana"}},
        "07_errors": {"/chat": {"name": "Ana"}}}
LOGIN = {"09_testing": {"username": "ana"}, "10_redis_pubsub": {"username": "ana"}}
SETTINGS = {"10_redis_pubsub": {"MESSAGE_QUEUE": False}}  # Flask-SocketIO's test client needs it off
NOISE = {"tick"}  # what the server sends on its own, whatever the clients do (chapter 05's clock)
chapters = pytest.mark.parametrize("chapter", CHAPTERS, indirect=True, ids=[c.name for c in CHAPTERS])


def handlers(socketio):
    """``{namespace: {event: handler}}`` of every event the app handles, decorated or class-based."""
    found = {namespace: {event: inspect.unwrap(handler) for event, handler in events.items()}
             for namespace, events in socketio.server.handlers.items()}
    for namespace, instance in socketio.server.namespace_handlers.items():
        found.setdefault(namespace, {}).update(
            {name[3:]: method for name, method in inspect.getmembers(instance, inspect.ismethod)
             if name.startswith("on_")})
    return found


def wrong_arguments(handler):
    """Arguments ``handler`` must refuse: none at all, one too many, and ``True`` where values belong."""
    parameters = inspect.signature(handler).parameters.values()
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    cases = []
    if positional:
        cases += [(), (True,) * len(positional)]
    if not any(p.kind == p.VAR_POSITIONAL for p in parameters):
        cases.append((True,) * (len(positional) + 1))
    return cases


@pytest.fixture
def enter(chapter):
    """The chapter's app (threading mode, in this process) and a way to connect clients that are let in."""
    app = chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test",
                             **SETTINGS.get(chapter.__file__.split("/")[-2], {}))
    folder = chapter.__file__.split("/")[-2]
    clients = []

    def enter(namespace):
        http = app.test_client()
        if folder in LOGIN:
            assert http.post("/login", data=LOGIN[folder], headers={"Origin": "http://localhost"}).status_code < 400
        client = chapter.socketio.test_client(app, namespace=namespace, flask_test_client=http,
                                               auth=AUTH.get(folder, {}).get(namespace))
        assert client.is_connected(namespace), f"{folder}: refused on {namespace}"
        client.get_received(namespace)
        clients.append(client)
        return client

    enter.app = app
    yield enter
    for client in clients:
        if client.is_connected():
            client.disconnect()


def bad_inputs(client, namespace):
    """The ``bad_input`` payloads a client received, after checking it received nothing else."""
    received = [e for e in client.get_received(namespace) if e["name"] not in NOISE]
    assert all(e["name"] == "bad_input" for e in received), received
    return [e["args"][0] for e in received]


@chapters
def test_lifecycle_events_sent_by_a_client_change_nothing(chapter, enter):
    """A client's ordinary event called "connect" or "disconnect" reaches the lifecycle handler: refused."""
    lifecycle = {ns: [e for e in LIFECYCLE if e in events] for ns, events in handlers(chapter.socketio).items()}
    for namespace, events in lifecycle.items():
        if not events:
            continue
        sender, witness = enter(namespace), enter(namespace)
        sender.get_received(namespace)  # the news that the witness came in
        for event in events:
            for arguments in [(), ("forged",), ({"name": "Bob", "username": "bob"},),
                              (None, {"name": "Bob", "username": "bob"}), (1, 2, 3)]:
                answer = sender.emit(event, *arguments, namespace=namespace, callback=True)
                assert isinstance(answer, dict) and answer.get("error"), (namespace, event, arguments, answer)
                assert bad_inputs(sender, namespace) == [{"event": event, "error": answer["error"]}]
        assert sender.is_connected(namespace)
        assert bad_inputs(witness, namespace) == [], "the others saw something happen"


@chapters
def test_every_event_refuses_missing_extra_and_wrongly_typed_arguments(chapter, enter):
    """Whatever the arguments, a handler answers bad_input (and an {error} acknowledgement), never a traceback."""
    for namespace, events in handlers(chapter.socketio).items():
        sender = None
        for event, handler in events.items():
            if event in LIFECYCLE:
                continue
            sender = sender or enter(namespace)
            for arguments in wrong_arguments(handler):
                answer = sender.emit(event, *arguments, namespace=namespace, callback=True)
                assert isinstance(answer, dict) and answer.get("error"), (namespace, event, arguments, answer)
                # An incident id instead: chapter 07's deliberate failures, its lesson (a bug, not bad input).
                told = [] if "id" in answer else [{"event": event, "error": answer["error"]}]
                assert bad_inputs(sender, namespace) == told
                assert sender.is_connected(namespace)


@chapters
def test_a_cookie_signed_with_the_old_public_key_opens_no_session(chapter, monkeypatch):
    """Without FLASK_SECRET_KEY a chapter signs with its own random key, so a cookie forged with "dev" is refused."""
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    app = chapter.create_app(ASYNC_MODE="threading", TESTING=True,
                             **SETTINGS.get(chapter.__file__.split("/")[-2], {}))
    assert app.secret_key not in (None, "", "dev")
    public = Flask("public")
    public.secret_key = "dev"
    forged = SecureCookieSessionInterface().get_signing_serializer(public).dumps({"username": "bob"})
    with app.test_request_context(headers={"Cookie": f"session={forged}"}):
        assert "username" not in session


@chapters
def test_posts_from_another_site_are_refused(chapter, monkeypatch):
    """Every POST route refuses a request sent from another site's page, whatever it carries (CSRF)."""
    app = chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test",
                             **SETTINGS.get(chapter.__file__.split("/")[-2], {}))
    routes = [rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    http = app.test_client()
    for route in routes:
        for body in ({"json": {"text": "hi", "username": "ana"}}, {"data": {"text": "hi", "username": "ana"}}):
            response = http.post(route, headers={"Origin": "http://evil.example"}, **body)
            # 415: the route takes no such body at all, before anything else is looked at.
            assert response.status_code in (403, 415), (route, body, response.status_code)


# Live: each chapter's app.py as a process, once per async mode; raw Engine.IO traffic.

EVIL = "http://evil.example"
DEEP = "[" * 10_000 + "]" * 10_000
MALFORMED = {  # what a client may send below the handlers: each over a fresh WebSocket
    "an empty text frame": [""],
    "an unknown Engine.IO packet type": ["9"],
    "an unknown Socket.IO packet type": ["49"],
    "a CONNECT_ERROR from a client": ['44{"message":"x"}'],
    "JSON that does not parse": ['42["x",'],
    "JSON nested 10,000 deep in an event": ['42["x",' + DEEP + "]"],
    "JSON nested 10,000 deep in an acknowledgement": ["431" + DEEP],
    "450 attachments announced": ['45450-["x",{"_placeholder":true,"num":0}]'],
    "a placeholder past the attachments": ['451-["x",{"_placeholder":true,"num":7}]', b"\x00"],
    "a placeholder numbered by a string": ['451-["x",{"_placeholder":true,"num":"a"}]', b"\x00"],
    "an attachment nobody announced": [b"\x00\x01"],
}


LIVE = [(c.name, mode) for c in CHAPTERS for mode in ASYNC_MODES]


@pytest.fixture(scope="module")
def fleet():
    """Start the servers of ``LIVE`` a few ahead of need, two at a time: a test waits for its server only
    if the ones before it finished faster than it started."""
    pool, started = ThreadPoolExecutor(max_workers=2), {}

    def server(index):
        for ahead in range(index, min(index + 3, len(LIVE))):
            if ahead not in started:
                started[ahead] = pool.submit(ChapterServer(*LIVE[ahead]).start)
        return started[index].result()

    yield server
    pool.shutdown(cancel_futures=True)
    for future in started.values():
        if not future.cancelled() and future.exception() is None:
            future.result().stop()  # those the module never reached; stopping twice is harmless


@pytest.fixture(scope="module", params=range(len(LIVE)), ids=[f"{c}-{m}" for c, m in LIVE])
def chapter_server(request, fleet):
    """A chapter's ``app.py`` as a real process, in one async mode: once per chapter and mode."""
    running = fleet(request.param)
    yield running
    running.stop()


@pytest.fixture
def engine(chapter_server):
    """Open raw Engine.IO WebSockets to the live server (their open packet read); all closed at the end."""
    opened = []

    def engine(origin=None):
        ws = websocket.WebSocket()
        opened.append(ws)
        ws.connect(chapter_server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                   timeout=5, origin=origin or chapter_server.url)
        assert ws.recv().startswith("0")
        return ws

    yield engine
    for ws in opened:
        ws.shutdown()  # no closing handshake: close() waits for one the server may have sent already


def polling(chapter_server, method="GET", body=None, sid=None, origin=None):
    """A long-polling request: (status, body); (None, "") if the server answered and hung up before
    reading all of ``body`` (eventlet does, refusing an oversized one), so that sending it failed."""
    url = f"{chapter_server.url}/socket.io/?EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": origin or chapter_server.url}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers, method=method), timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()
    except urllib.error.URLError as error:
        if not isinstance(error.reason, (BrokenPipeError, ConnectionResetError)):
            raise
        return None, ""


def answer_to_probe(ws):
    """Ask to join a namespace no chapter has, then read what the server sends, frame by frame, until it
    answers or closes the connection: (everything it sent, as text; whether it closed). A wedged
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


def assert_no_internals(text):
    """No traceback and no file path in what a client received."""
    assert "Traceback" not in text and str(ROOT) not in text and ".py" not in text, text


def test_other_origins_are_refused_on_both_transports(chapter_server, engine):
    status, answer = polling(chapter_server, origin=EVIL)
    assert (status, "Not an accepted origin" in answer) == (400, True)
    with pytest.raises(websocket.WebSocketBadStatusException):
        engine(origin=EVIL)


@pytest.mark.parametrize("frames", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_get_no_internals(engine, frames):
    ws = engine()
    ws.send("40")
    assert ws.recv().startswith("4")  # accepted, or refused where a chapter asks for auth
    for frame in frames:
        ws.send_binary(frame) if isinstance(frame, bytes) else ws.send(frame)
    received, _ = answer_to_probe(ws)
    assert_no_internals(received)


def test_an_unknown_namespace_is_refused_with_a_message(engine):
    """The JavaScript client shows ``connect_error``'s ``message``: python-socketio sends a bare string."""
    received, closed = answer_to_probe(engine())
    assert not closed and '44/probe,{"message":"Unable to connect"}' in received


@pytest.mark.parametrize("body", ["9", "4\x1e", "", "4" + "x" * 1_000_001],
                         ids=["type-9", "empty-packet", "empty", "1MB"])
def test_long_polling_posts_that_are_not_engine_io_are_answered(chapter_server, body):
    status, opened = polling(chapter_server)
    sid = json.loads(opened[1:])["sid"]
    status, answer = polling(chapter_server, "POST", body.encode(), sid)
    assert status == 400 or (status is None and len(body) > MAX_PACKET), status
    assert_no_internals(answer)


def test_an_oversized_packet_closes_only_its_connection(engine):
    sender, witness = engine(), engine()
    sender.send("42" + json.dumps(["x", "x" * 100_000]))
    received, closed = answer_to_probe(sender)
    assert closed
    assert_no_internals(received)
    witness.send("40")
    assert witness.recv().startswith("4")  # its namespace connect is answered (accepted or refused)


def test_the_log_shows_no_traceback(chapter_server):
    """After all of the above (this test runs last for each server), the server still serves; its log is clean."""
    with urllib.request.urlopen(chapter_server.url, timeout=5) as page:
        assert page.status == 200
    assert "Traceback" not in chapter_server.output(), chapter_server.output()
