"""Chapter 08: class-based namespaces, their sids, self.emit/self.send, error(), and who wins over whom."""
import queue

import pytest
import socketio
from playwright.sync_api import expect

from tutorial.testing import received

NAMESPACES = ["/test", "/chat", "/notifications"]
EMPTY, LONG = "must be a non-empty string", "is longer than 500 characters"  # after the key: "'text' is …"
BAD_PAYLOADS = [(None, EMPTY), ("plain text", EMPTY), ({}, EMPTY), ({"text": 42, "data": 42}, EMPTY),
                ({"text": "  ", "data": "  "}, EMPTY), ({"text": "x" * 501, "data": "x" * 501}, LONG)]
EVENTS = [("/test", "my_event", "data"), ("/chat", "chat_message", "text"), ("/notifications", "notify", "text")]
XSS = '<img src=x onerror="window.pwned=1">'


# In-process: Flask-SocketIO's test client.

def test_each_namespace_gives_the_same_connection_its_own_sid(chapter, app):
    client = chapter.socketio.test_client(app, namespace="/test")
    for namespace in NAMESPACES[1:]:
        client.connect(namespace=namespace)
    sids = {}
    for namespace in NAMESPACES:
        [(name, greeting)] = received(client, namespace)
        assert (name, greeting["namespace"]) == ("connected", namespace)
        sids[namespace] = greeting["sid"]
    assert len(set(sids.values())) == 3
    manager = chapter.socketio.server.manager
    assert {manager.eio_sid_from_sid(sid, ns) for ns, sid in sids.items()} == {client.eio_sid}


def test_my_event_answers_the_sender_only(chapter, app):
    sender, other = (chapter.socketio.test_client(app, namespace="/test") for _ in range(2))
    for client in (sender, other):
        client.get_received("/test")
    sender.emit("my_event", {"data": " hello "}, namespace="/test")
    assert received(sender, "/test") == [("my_response", {"data": "hello"})]
    assert received(other, "/test") == []


def test_self_emit_and_self_send_stay_in_their_namespace(chapter, app):
    alice = chapter.socketio.test_client(app, namespace="/chat")
    alice.connect(namespace="/notifications")
    bob = chapter.socketio.test_client(app, namespace="/chat")
    bob.connect(namespace="/notifications")
    for client in (alice, bob):
        for namespace in ("/chat", "/notifications"):
            client.get_received(namespace)
    alice.emit("chat_message", {"text": "hi"}, namespace="/chat")
    alice.emit("notify", {"text": "new report"}, namespace="/notifications")
    alice_chat_sid = chapter.socketio.server.manager.sid_from_eio_sid(alice.eio_sid, "/chat")
    for client in (alice, bob):
        assert received(client, "/chat") == [("chat_message", {"text": "hi", "from": alice_chat_sid})]
        assert received(client, "/notifications") == [("message", "new report")]


@pytest.mark.parametrize("namespace, event", [("/chat", "notify"), ("/notifications", "chat_message"),
                                              ("/test", "no_such_event"), ("/test", "my event")])
def test_an_event_without_a_method_is_ignored(chapter, app, namespace, event):
    client = chapter.socketio.test_client(app, namespace="/test")
    if namespace != "/test":
        client.connect(namespace=namespace)
    client.get_received(namespace)
    client.get_received("/test")
    client.emit(event, {"text": "anyone?"}, namespace=namespace)
    assert received(client, namespace) == []
    assert client.is_connected(namespace)
    client.emit("my_event", {"data": "still here"}, namespace="/test")
    assert received(client, "/test") == [("my_response", {"data": "still here"})]


def test_the_decorator_wins_over_the_class_method(chapter, app):
    client = chapter.socketio.test_client(app, namespace="/test")
    assert hasattr(chapter.MyCustomNamespace, "on_which_handler")
    assert client.emit("which_handler", namespace="/test", callback=True) == {"handler": "decorator"}


def test_error_method_logs_the_bug_and_acks_plainly(chapter, app, caplog):
    client = chapter.socketio.test_client(app, namespace="/test")
    reply = client.emit("my_error_event", namespace="/test", callback=True)
    assert reply == {"error": "the server could not handle this event"}
    assert "RuntimeError: a deliberate bug" in caplog.text  # the full traceback, in the server log only
    assert client.is_connected("/test")


def test_error_method_also_swallows_connection_refused(chapter, app):
    """A trap in Flask-SocketIO 5.7: ``error()`` catches ConnectionRefusedError too, so the refusal is lost."""
    class Refusing(chapter.TutorialNamespace):
        def on_connect(self):
            raise ConnectionRefusedError("go away")

    chapter.socketio.on_namespace(Refusing("/refusing"))
    assert chapter.socketio.test_client(app, namespace="/refusing").is_connected("/refusing")


@pytest.mark.parametrize(("payload", "problem"), BAD_PAYLOADS)
@pytest.mark.parametrize("namespace, event, key", EVENTS)
def test_bad_input_gets_a_clear_error(chapter, app, namespace, event, key, payload, problem):
    client = chapter.socketio.test_client(app, namespace=namespace)
    client.get_received(namespace)
    error = f"{key!r} {problem}"
    assert client.emit(event, payload, namespace=namespace, callback=True) == {"error": error}
    assert received(client, namespace) == [("bad_input", {"event": event, "error": error})]


# Live: app.py as a real server, real clients over WebSocket.

def test_one_websocket_carries_three_namespaces(server):
    client = socketio.Client()
    greetings = queue.Queue()
    for namespace in NAMESPACES:
        client.on("connected", greetings.put, namespace=namespace)
    client.connect(server.url, namespaces=NAMESPACES, transports=["websocket"], wait_timeout=5)
    try:
        sids = {greeting["namespace"]: greeting["sid"] for greeting in (greetings.get(timeout=5) for _ in NAMESPACES)}
        assert sids == {namespace: client.get_sid(namespace) for namespace in NAMESPACES}
        assert len(set(sids.values())) == 3
        assert client.transport() == "websocket"
    finally:
        client.disconnect()


def test_chat_reaches_everyone_in_chat_and_leaving_is_announced(connect):
    alice, bob = connect("/chat"), connect("/chat")
    for sio in (alice, bob):
        assert sio.receive(timeout=5)[0] == "connected"
    alice.emit("chat_message", {"text": "hi"})
    for sio in (alice, bob):
        assert sio.receive(timeout=5) == ["chat_message", {"text": "hi", "from": alice.sid}]
    bob_sid = bob.sid
    bob.disconnect()
    assert alice.receive(timeout=5) == ["left", {"namespace": "/chat", "sid": bob_sid}]


def test_notify_arrives_as_a_message_event(connect):
    alice, bob = connect("/notifications"), connect("/notifications")
    for sio in (alice, bob):
        assert sio.receive(timeout=5)[0] == "connected"
    alice.emit("notify", {"text": "new report"})
    for sio in (alice, bob):
        assert sio.receive(timeout=5) == ["message", "new report"]


def test_precedence_unknown_events_and_errors_over_websocket(server, connect):
    sio = connect("/test")
    assert sio.receive(timeout=5)[0] == "connected"
    assert sio.call("which_handler", timeout=5) == {"handler": "decorator"}
    sio.emit("no_such_event", {"data": "anyone?"})
    assert sio.call("my_error_event", timeout=5) == {"error": "the server could not handle this event"}
    sio.emit("my_event", {"data": "still here"})
    assert sio.receive(timeout=5) == ["my_response", {"data": "still here"}]
    assert "RuntimeError: a deliberate bug" in server.output()


@pytest.mark.parametrize("namespace, event, key", EVENTS)
def test_bad_input_over_websocket(connect, namespace, event, key):
    sio = connect(namespace)
    assert sio.receive(timeout=5)[0] == "connected"
    sio.emit(event, {key: ""})
    assert sio.receive(timeout=5) == ["bad_input", {
        "event": event, "error": f"{key!r} {EMPTY}"}]


# Browser: the page in headless Chromium.

def test_page_shows_three_sids_over_one_engine_connection(open_page, server):
    page = open_page()
    expect(page.locator("#async-mode")).to_have_text(server.async_mode)
    for name in ("test", "chat", "notifications"):
        expect(page.locator(f"#sid-{name}")).not_to_have_text("–")
    sids = {page.locator(f"#sid-{name}").text_content() for name in ("test", "chat", "notifications")}
    assert len(sids) == 3
    engine = page.evaluate("sockets.test.io.engine.id")
    assert page.evaluate("[sockets.chat.io.engine.id, sockets.notifications.io.engine.id]") == [engine, engine]
    expect(page.locator("#engine-id")).to_have_text(engine)


def test_page_demonstrates_the_test_namespace(open_page):
    page = open_page()
    expect(page.locator("#sid-test")).not_to_have_text("–")
    page.click("#which")
    expect(page.locator("#test-log")).to_contain_text("which_handler answered by: decorator")
    page.click("#unknown")
    page.fill("#my-event-text", "still connected")
    page.click("#my-event-form button")
    expect(page.locator("#test-log")).to_contain_text("my_response: still connected")
    page.click("#fail")
    expect(page.locator("#test-log")).to_contain_text("my_error_event: the server could not handle this event")


def test_chat_and_notifications_between_two_pages(open_page):
    alice, bob = open_page(), open_page()
    for page in (alice, bob):
        expect(page.locator("#sid-chat")).not_to_have_text("–")
    alice.fill("#chat-text", XSS)
    alice.click("#chat-form button")
    expect(alice.locator("#chat-log")).to_contain_text(f"you: {XSS}")
    expect(bob.locator("#chat-log")).to_contain_text(f": {XSS}")
    bob.fill("#notify-text", "build finished")
    bob.click("#notify-form button")
    for page in (alice, bob):
        expect(page.locator("#notifications-log")).to_contain_text("message: build finished")
        assert page.evaluate("window.pwned") is None
    expect(alice.locator("#test-log")).to_be_empty()  # /chat and /notifications never leak into /test


def test_page_shows_bad_input(open_page):
    page = open_page()
    expect(page.locator("#sid-test")).not_to_have_text("–")
    page.evaluate("sockets.test.emit('my_event', {data: 42})")
    expect(page.locator("#errors")).to_have_text("my_event: 'data' must be a non-empty string")
