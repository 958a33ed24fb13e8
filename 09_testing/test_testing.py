"""Chapter 09: how to test a Flask-SocketIO app, one level at a time. Read it top to bottom.

1. In-process: Flask-SocketIO's test client calls the handlers directly; fast, no network.
2. Live: ``app.py`` runs as a real server; real ``socketio`` clients talk to it over WebSocket.
3. Browser: the page itself, in headless Chromium driven by Playwright.

The fixtures ``app``, ``server``, ``connect`` and ``open_page`` come from the root conftest.py (``client``
too, redefined below for /test); ``verbose_server`` from this folder's conftest.py.
"""
import http.cookiejar
import queue
import threading
import urllib.parse
import urllib.request

import pytest
import socketio
import websocket
from playwright.sync_api import expect

from tutorial.testing import until

EMPTY, LONG = "'data' must be a non-empty string", "'data' is longer than 500 characters"
BAD_PAYLOADS = [(None, EMPTY), ("plain text", EMPTY), ({}, EMPTY), ({"data": 42}, EMPTY), ({"data": "   "}, EMPTY),
                ({"data": "x" * 501}, LONG)]
XSS = '<img src=x onerror="window.pwned=1">'


# 1. In-process: the test client. Every emit runs the handler at once, in this thread.

@pytest.fixture
def client(chapter, app):
    """The test client, connected to /test and its greeting already read (it overrides the root fixture)."""
    client = chapter.socketio.test_client(app, namespace="/test")
    client.get_received("/test")
    return client


def test_connect_greets_the_page(chapter, app):
    client = chapter.socketio.test_client(app, namespace="/test")
    assert client.is_connected("/test")
    # get_received() returns (and forgets) everything the server sent to this client so far.
    assert client.get_received("/test") == [
        {"name": "my_response", "args": [{"data": "Connected", "username": None}], "namespace": "/test"}]


def test_my_event_is_echoed_and_acknowledged(client):
    # callback=True asks for an acknowledgement: emit() returns what the handler returned.
    assert client.emit("my_event", {"data": " hello "}, namespace="/test", callback=True) == {"status": "echoed"}
    [echo] = client.get_received("/test")
    assert echo["args"] == [{"data": "hello", "username": None}]


def test_disconnect(client):
    client.disconnect(namespace="/test")
    assert not client.is_connected("/test")


def test_a_logged_in_user(chapter, app):
    # The Flask test client logs in over HTTP; its cookie goes with the Socket.IO connection.
    flask_client = app.test_client()
    assert flask_client.post("/login", data={"username": "alice"}).status_code == 302
    client = chapter.socketio.test_client(app, namespace="/test", flask_test_client=flask_client)
    assert client.get_received("/test")[0]["args"] == [{"data": "Connected", "username": "alice"}]
    assert 'Logged in as <b id="username">alice</b>' in flask_client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("username", ["", "   ", "x" * 21, "..", "_", "b\u043eb",  # a Cyrillic "о": it looks like bob
                                      "\u212aim",  # the Kelvin sign, which lower() would turn into an ASCII "k"
                                      "admin", "Root"])
def test_login_refuses_ambiguous_and_reserved_names(app, username):
    browser = app.test_client()
    assert browser.post("/login", data={"username": username}).status_code == 400
    assert browser.get_cookie(app.config["SESSION_COOKIE_NAME"]) is None


def test_login_folds_case_and_sets_a_same_site_cookie(app):
    browser = app.test_client()
    response = browser.post("/login", data={"username": "Alice"})
    assert "SameSite=Lax" in response.headers["Set-Cookie"]  # another site's requests do not carry it
    assert 'Logged in as <b id="username">alice</b>' in browser.get("/").get_data(as_text=True)


@pytest.mark.parametrize(("origin", "status"), [("http://localhost", 302), ("https://evil.example", 403),
                                                ("http://localhost:8080", 403), ("null", 403)])
def test_login_from_another_site_is_refused(app, origin, status):
    # A form on evil.example may post here: the browser sends its Origin, the server refuses it.
    browser = app.test_client()
    response = browser.post("/login", data={"username": "alice"}, headers={"Origin": origin})
    assert response.status_code == status
    assert (browser.get_cookie(app.config["SESSION_COOKIE_NAME"]) is not None) == (status == 302)


@pytest.mark.parametrize(("payload", "error"), BAD_PAYLOADS)
def test_bad_input_gets_a_clear_error(client, payload, error):
    assert client.emit("my_event", payload, namespace="/test", callback=True) == {"error": error}
    assert client.get_received("/test") == [
        {"name": "bad_input", "args": [{"event": "my_event", "error": error}], "namespace": "/test"}]


def test_a_handlers_name_is_not_proof_of_who_called_it(client):
    # Any client may send an ordinary event called "connect": python-socketio 5.18 alone would run the
    # connect handler for it, on a connection that is already open, with arguments of the client's choosing.
    # protect() refuses it with the malformed packets, before any handler: here the test client's emit raises
    # (live, the connection is closed: see below). Remove protect() and this test fails: the greeting comes
    # again, sent by the client's own hand.
    with pytest.raises(ValueError, match="an event named 'connect', which only Socket.IO itself sends"):
        client.emit("connect", "x", {"username": "bob"}, namespace="/test")
    assert client.get_received("/test") == []


def test_an_extra_argument_is_bad_input(client, caplog):
    # Flask-SocketIO calls the handler with every argument the client sent: one too many would be a TypeError
    # before the handler's first line. protect() answers it as bad input instead, before calling the handler.
    error = "wrong number of arguments: see the events table in README.md"
    assert client.emit("my_event", {"data": "hi"}, "extra", namespace="/test", callback=True) == {"error": error}
    assert client.get_received("/test") == [
        {"name": "bad_input", "args": [{"event": "my_event", "error": error}], "namespace": "/test"}]
    assert "Traceback" not in caplog.text


def test_the_test_client_cannot_answer_the_server(client):
    # The server's call() waits for the client's acknowledgement. The test client runs handlers
    # synchronously and never acknowledges, so python-socketio refuses: test this live (below).
    with pytest.raises(RuntimeError, match="Cannot use call"):
        client.emit("ask_me", namespace="/test")


def test_the_page_is_the_notes_page_made_safe(app):
    page = app.test_client().get("/").get_data(as_text=True)
    assert "Flask-SocketIO Test" in page
    assert '<b id="async-mode">threading</b>' in page
    assert "vendor/socket.io.min.js" in page
    assert "//cdnjs" not in page and "jquery" not in page


# 2. Live: a real server process (once per async mode) and real clients over WebSocket.

def test_echo_over_websocket(connect):
    sio = connect("/test")  # a socketio.SimpleClient
    assert sio.receive(timeout=5) == ["my_response", {"data": "Connected", "username": None}]
    assert sio.call("my_event", {"data": "hello"}, timeout=5) == {"status": "echoed"}
    assert sio.receive(timeout=5) == ["my_response", {"data": "hello", "username": None}]


def login_cookie(url, username):
    """Log in over HTTP as a browser would; return the Cookie header the session lives in."""
    cookies = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
    browser.open(f"{url}/login", urllib.parse.urlencode({"username": username}).encode())
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in cookies)


def test_a_client_that_sends_connect_closes_its_own_connection(server, connect):
    # The same "connect" event, live, written as the frames the dev tools show (README.md): the server closes the
    # connection that sent it before any handler runs (no second greeting comes first), logs one line, and
    # serves everyone else as before.
    ws = websocket.create_connection(server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                     timeout=5)
    try:
        assert ws.recv().startswith("0{")  # Engine.IO open
        ws.send("40/test,")  # Socket.IO CONNECT to /test
        frames = [ws.recv(), ws.recv()]  # the greeting and the CONNECT answer, in either order
        assert any('"my_response"' in frame for frame in frames) and any(f.startswith("40/test,{") for f in frames)
        ws.send('42/test,["connect",{"username":"bob"}]')
        assert ws.recv() == "" and not ws.connected  # a close frame, not a frame of a handler's
    finally:
        ws.shutdown()  # close() does nothing once the server has closed, and the socket would stay open
    assert server.wait_for_output("an event named 'connect', which only Socket.IO itself sends"), server.output()
    assert connect(namespace="/test").call("my_event", {"data": "still served"}, timeout=5) == {"status": "echoed"}


def test_a_logged_in_user_over_websocket(server):
    with socketio.SimpleClient() as sio:
        sio.connect(server.url, namespace="/test", headers={"Cookie": login_cookie(server.url, "alice")},
                    transports=["websocket"], wait_timeout=5)
        assert sio.receive(timeout=5) == ["my_response", {"data": "Connected", "username": "alice"}]


def test_simple_client_acknowledges_with_nothing(connect):
    # SimpleClient acknowledges every event automatically, with no value: it cannot answer.
    sio = connect("/test")
    sio.receive(timeout=5)
    sio.emit("ask_me")
    assert sio.receive(timeout=5) == ["question", {"question": "What is your favourite colour?"}]
    assert sio.receive(timeout=5) == ["bad_input", {"event": "question",
                                                    "error": "the answer must be a non-empty string"}]


def ask_the_server_to_ask(url, answer):
    """Connect a full ``socketio.Client`` whose ``question`` handler is ``answer``; return its responses."""
    client = socketio.Client()
    responses = queue.Queue()
    client.on("my_response", lambda message: responses.put(message["data"]), namespace="/test")
    client.on("question", answer, namespace="/test")  # its return value is the acknowledgement
    client.connect(url, namespaces=["/test"], transports=["websocket"], wait_timeout=5)
    assert responses.get(timeout=5) == "Connected"
    client.emit("ask_me", namespace="/test")
    return client, responses


def test_a_real_client_answers_the_server(server):
    client, responses = ask_the_server_to_ask(server.url, lambda message: "blue")
    try:
        assert responses.get(timeout=5) == "You answered: blue"
    finally:
        client.disconnect()


def test_a_question_nobody_answers_in_time(verbose_server):
    # A slow user: the handler holds its answer until the server (1 s timeout here) has given up.
    gave_up = threading.Event()
    client, responses = ask_the_server_to_ask(verbose_server.url, lambda message: gave_up.wait(5) and "late")
    refused = queue.Queue()
    client.on("bad_input", refused.put, namespace="/test")
    try:
        client.emit("ask_me", namespace="/test")  # every wait holds a server thread: one question at a time
        assert refused.get(timeout=5) == {"event": "ask_me", "error": "answer the question you have been asked first"}
        assert responses.get(timeout=5) == "No answer in time"
    finally:
        gave_up.set()
        client.disconnect()


def test_socketio_logger_shows_every_event_and_packet(verbose_server, server, connect):
    with socketio.SimpleClient() as sio:
        sio.connect(verbose_server.url, namespace="/test", transports=["websocket"], wait_timeout=5)
        sio.call("my_event", {"data": "log me"}, timeout=5)
        assert verbose_server.wait_for_output(f'received event "my_event" from {sio.sid} [/test]')  # logger
        assert verbose_server.wait_for_output('Sending packet MESSAGE data 2/test,["my_response",'
                                               '{"data":"log me","username":null}]')  # engineio_logger
    # Off by default: the ordinary server said nothing of the kind about the same traffic.
    connect("/test").call("my_event", {"data": "quiet"}, timeout=5)
    assert "received event" not in server.output()
    assert "Sending packet" not in server.output()


@pytest.mark.parametrize(("payload", "error"), [
    ("plain text", EMPTY),
    (None, "wrong number of arguments: see the events table in README.md"),  # None: no argument
])
def test_bad_input_over_websocket(connect, payload, error):
    sio = connect("/test")
    sio.receive(timeout=5)
    assert sio.call("my_event", payload, timeout=5) == {"error": error}
    assert sio.receive(timeout=5) == ["bad_input", {"event": "my_event", "error": error}]


# 3. Browser: the page in headless Chromium. expect(...) waits until the page gets there.

def greeted_page(open_page):
    """Open the page and wait until the server's greeting shows: the connection is up."""
    page = open_page()
    expect(page.locator("#log")).to_contain_text("Received: Connected")  # the notes' page never showed it
    return page


def send(page, text):
    """Type ``text`` into the notes' form and send it as ``my_event``."""
    page.fill("#emit_data", text)
    page.click("#emit button")

def test_page_greets_echoes_and_names_the_async_mode(open_page, server):
    page = greeted_page(open_page)
    expect(page).to_have_title("09 · Testing")
    expect(page.locator("#async-mode")).to_have_text(server.async_mode)
    expect(page.locator("#log")).to_contain_text("Received: I'm connected!")
    send(page, "hello")
    expect(page.locator("#log li").last).to_have_text("Received: hello")


def test_page_logs_in(open_page):
    page = open_page()
    page.fill("#login-name", "alice")
    page.click("#login button")
    expect(page.locator("#username")).to_have_text("alice")
    expect(page.locator("#log")).to_contain_text("Received: Connected (alice)")


def test_page_answers_the_server(open_page):
    page = greeted_page(open_page)
    page.click("#ask")
    expect(page.locator("#question")).to_have_text("What is your favourite colour?")
    page.fill("#answer-text", "green")
    page.click("#answer button")
    expect(page.locator("#log li").last).to_have_text("Received: You answered: green")


def test_user_text_is_shown_not_run(open_page):
    page = greeted_page(open_page)
    send(page, XSS)
    expect(page.locator("#log li").last).to_have_text(f"Received: {XSS}")
    expect(page.locator("#log img")).to_have_count(0)
    assert page.evaluate("window.pwned") is None


def test_page_shows_bad_input(open_page):
    page = greeted_page(open_page)
    page.evaluate("socket.emit('my_event', {data: 42})")
    expect(page.locator("#errors")).to_have_text(f"my_event: {EMPTY}")


def test_the_frames_dev_tools_show(open_page):
    # What Network → WS → Messages shows, read by the test instead of by you.
    page = open_page()
    page.wait_for_function("socket.io.engine.transport.name === 'websocket'")  # this connection is done
    frames = []
    page.on("websocket", lambda ws: (ws.on("framesent", lambda text: frames.append(("sent", text))),
                                     ws.on("framereceived", lambda text: frames.append(("received", text)))))
    page.reload()  # a new connection, watched from its first frame
    expect(page.locator("#log")).to_contain_text("Received: I'm connected!")
    send(page, "hello frames")
    expected = [
        ("sent", "2probe"), ("received", "3probe"), ("sent", "5"),  # the upgrade from polling
        ("sent", '42/test,["my_event",{"data":"hello frames"}]'),
        ("received", '42/test,["my_response",{"data":"hello frames","username":null}]'),
    ]
    # page.wait_for_timeout(), not a sleep: Playwright delivers the frame events while it waits.
    until(lambda: page.wait_for_timeout(50) or all(frame in frames for frame in expected))
    assert [frame for frame in frames if frame in expected] == expected
