"""Chapter 07: error handlers per namespace; the client sees an incident id, the log sees everything."""
import re

import pytest
import socketio
from playwright.sync_api import expect

XSS = '<img src=x onerror="window.pwned=1">'
HANDLERS = [("/", "on_error()"), ("/chat", "on_error('/chat')"), ("/test", "on_error_default")]
INTERNALS = ["Traceback", "RuntimeError", "deliberate failure", "/srv/app", "secrets.cfg", "app.py"]
EMPTY = "'data' must be a non-empty string"
CHAT_AUTH = {"name": "ada"}


def assert_friendly(answer, handler):
    """An error handler's answer: what failed and an incident id, nothing from inside the server."""
    assert answer == {"error": "Something went wrong handling 'my error event'", "id": answer["id"],
                      "handler": handler}
    assert re.fullmatch(r"[0-9a-f]{8}", answer["id"])
    assert not [leak for leak in INTERNALS if leak in repr(answer)]


def assert_logged(log, answer, namespace):
    """The server log has the incident: the failed event, its arguments and the traceback."""
    entry = log[log.index(f"incident {answer['id']} "):]
    assert f"'my error event' on {namespace} failed, args ({{'n': 1}},)" in entry
    assert "Traceback (most recent call last)" in entry
    assert "RuntimeError: deliberate failure" in entry


@pytest.fixture
def connected(chapter, app):
    """An in-process test client connected to '/', '/chat' (with a name) and '/test'."""
    client = chapter.socketio.test_client(app)
    client.connect("/chat", auth=CHAT_AUTH)
    client.connect("/test")
    yield client
    for namespace, _ in HANDLERS:
        client.disconnect(namespace)


# In-process -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("namespace", "handler"), HANDLERS)
def test_error_handler_answers_the_acknowledgement(connected, namespace, handler):
    answer = connected.emit("my error event", {"n": 1}, callback=True, namespace=namespace)
    assert_friendly(answer, handler)
    assert connected.get_received(namespace) == []


@pytest.mark.parametrize(("namespace", "handler"), HANDLERS)
def test_error_handler_logs_request_event_and_traceback(connected, caplog, namespace, handler):
    answer = connected.emit("my error event", {"n": 1}, callback=True, namespace=namespace)
    assert_logged(caplog.text, answer, namespace)
    assert [r.levelname for r in caplog.records] == ["ERROR"]


def test_each_incident_has_its_own_id(connected):
    ids = {connected.emit("my error event", {"n": 1}, callback=True)["id"] for _ in range(5)}
    assert len(ids) == 5


def test_client_is_still_served_after_an_error(connected):
    connected.emit("my error event", {"n": 1}, callback=True)
    assert connected.emit("my event", {"data": "still here"}, callback=True) == {"echo": "still here"}


def test_a_connect_handler_that_crashes_admits_nobody(chapter, app, caplog):
    chapter.socketio.on("connect", namespace="/crashing")(lambda auth: {}["missing"])
    client = chapter.socketio.test_client(app, namespace="/crashing")
    assert not client.is_connected("/crashing")
    assert "'connect' on /crashing failed, args 'the handshake, not logged'" in caplog.text
    assert "HTTP_" not in caplog.text


@pytest.mark.parametrize(("payload", "error"), [
    (None, EMPTY),
    ("hello", EMPTY),
    ({"data": 3}, EMPTY),
    ({"data": " "}, EMPTY),
    ({"data": "x" * 501}, "'data' is longer than 500 characters"),
])
def test_invalid_input_is_bad_input_not_an_incident(client, caplog, payload, error):
    assert client.emit("my event", payload, callback=True) == {"error": error}
    assert client.get_received() == [{"name": "bad_input", "namespace": "/",
                                      "args": [{"event": "my event", "error": error}]}]
    assert "incident" not in caplog.text


@pytest.mark.parametrize("args", [(), ({"n": 1}, "one too many")])
@pytest.mark.parametrize(("namespace", "handler"), HANDLERS)
def test_wrong_number_of_arguments_is_bad_input_not_an_incident(connected, caplog, namespace, handler, args):
    # protect() answers it below the handlers: the client's mistake never reaches an error handler, so no incident.
    error = "wrong number of arguments: see the events table in README.md"
    assert connected.emit("my error event", *args, namespace=namespace, callback=True) == {"error": error}
    assert connected.get_received(namespace) == [{"name": "bad_input", "namespace": namespace,
                                                  "args": [{"event": "my error event", "error": error}]}]
    assert "incident" not in caplog.text


@pytest.mark.parametrize("auth", [None, {}, {"name": ""}, {"name": 5}, {"name": "x" * 21}, {"name": "<b>"}])
def test_chat_refuses_a_connection_without_a_name(client, auth):
    client.connect("/chat", auth=auth)
    assert not client.is_connected("/chat")
    assert client.is_connected("/")


# Live server ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("namespace", "handler"), HANDLERS)
def test_live_error_answer_is_friendly_and_the_log_has_the_details(server, connect, namespace, handler):
    sio = connect(namespace, auth=CHAT_AUTH if namespace == "/chat" else None)
    answer = sio.call("my error event", {"n": 1}, timeout=5)
    assert_friendly(answer, handler)
    assert_logged(server.output(), answer, namespace)


def test_live_chat_refuses_a_connection_without_a_name(connect):
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect("/chat", auth={})


def test_live_errors_of_one_client_do_not_disturb_another(connect):
    failing, other = connect(), connect()
    for n in range(10):
        failing.emit("my error event", {"n": n})  # not waiting for its answers: they queue up
        assert other.call("my event", {"data": f"message {n}"}, timeout=5) == {"echo": f"message {n}"}
    assert failing.call("my event", {"data": "and me?"}, timeout=5) == {"echo": "and me?"}


def test_live_invalid_input_gets_bad_input(connect):
    sio = connect()
    assert sio.call("my event", {"data": ""}, timeout=5) == {"error": EMPTY}
    assert sio.receive(timeout=5) == ["bad_input", {"event": "my event",
                                                    "error": EMPTY}]


# Browser ----------------------------------------------------------------------------------------

def connect_chat(page, name):
    """Connect the page's /chat socket, with a name or with none."""
    page.fill("#chat-name", name)
    page.click("#chat-connect button")


def test_page_shows_friendly_errors_from_each_handler(open_page):
    page = open_page()
    connect_chat(page, "ada")
    expect(page.locator("#chat-status")).to_have_text("connected")
    for namespace, _ in HANDLERS:
        page.click(f"#fail button[data-namespace='{namespace}']")
    errors = page.locator("#event-errors li")
    expect(errors).to_have_count(3)
    # Three namespaces answer independently (in threading mode, on three threads): any order.
    for _, handler in HANDLERS:
        answer = errors.filter(has_text=f"({handler}): the details are in the server log.")
        expect(answer).to_contain_text("Something went wrong handling 'my error event'. Incident ")
    text = page.locator("body").inner_text()
    assert not [leak for leak in INTERNALS if leak in text]


def test_page_shows_refusals_and_event_errors_side_by_side(open_page):
    page = open_page()
    connect_chat(page, "")
    expect(page.locator("#refusals li")).to_have_text(
        ["/chat refused the connection: /chat needs a name: a user name is 1-20 letters, digits, '-' or '_', "
         "starting with a letter or digit"])
    expect(page.locator("#chat-status")).to_have_text("refused")
    connect_chat(page, "ada")
    expect(page.locator("#chat-status")).to_have_text("connected")
    page.click("#fail button[data-namespace='/chat']")
    expect(page.locator("#event-errors li")).to_have_count(1)
    expect(page.locator("#refusals li")).to_have_count(1)


def test_page_shows_invalid_input_apart_from_errors(open_page):
    page = open_page()
    page.click("#echo button")
    expect(page.locator("#invalid li")).to_have_text([f"my event: {EMPTY}"])
    page.fill("#echo-text", "fine")
    page.click("#echo button")
    expect(page.locator("#answers li")).to_have_text(["fine"])
    expect(page.locator("#event-errors li")).to_have_count(0)


def test_page_errors_do_not_disturb_another_page(open_page):
    failing, other = open_page(), open_page()
    expect(failing.locator("#status")).to_contain_text("connected as ")
    for n in range(5):
        failing.click("#fail button[data-namespace='/']")
        other.fill("#echo-text", f"message {n}")
        other.click("#echo button")
        expect(other.locator("#answers li")).to_have_count(n + 1)
    expect(failing.locator("#event-errors li")).to_have_count(5)
    expect(failing.locator("#event-errors li").first).to_contain_text("Something went wrong handling 'my error event'")
    expect(other.locator("#event-errors li")).to_have_count(0)


def test_user_text_is_never_html(open_page):
    page = open_page()
    page.fill("#echo-text", XSS)
    page.click("#echo button")
    expect(page.locator("#answers li")).to_have_text([XSS])
    assert page.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
