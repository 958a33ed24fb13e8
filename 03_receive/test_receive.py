"""Chapter 03: unnamed and named events, types, several arguments, on_event, namespaces, acknowledgements."""
import json

import pytest
from playwright.sync_api import expect

XSS = '<img src=x onerror="window.pwned=1">'
NOT_A_VALUE = "send a string, bytes, an integer or a JSON object or array"

TYPES = [  # what a client sends to 'describe' -> the Python type and repr the server sees
    pytest.param("hello", "str", "'hello'"),
    pytest.param(b"\x00\xff", "bytes", "b'\\x00\\xff'"),
    pytest.param(42, "int", "42"),
    pytest.param({"a": [1, "b"]}, "dict", "{'a': [1, 'b']}"),
    pytest.param([1, 2], "list", "[1, 2]"),
]

BAD = [  # event, arguments, namespace -> the error in the ack and in bad_input
    ("message", ({"text": "hi"},), "/", "the message must be a non-empty string"),
    ("message", ("x" * 501,), "/", "the message is longer than 500 characters"),
    ("json", ("not an object",), "/", "send a JSON object"),
    ("json", ({"text": "x" * 500},), "/", "the value is longer than 500 characters when printed"),
    ("describe", (None,), "/", NOT_A_VALUE),
    ("describe", (4.5,), "/", NOT_A_VALUE),
    ("describe", (True,), "/", NOT_A_VALUE),
    ("describe", (b"x" * 500,), "/", "the value is longer than 500 characters when printed"),
    ("my event", ("a", "b", 3), "/", "each argument must be a non-empty string"),
    ("my event", ("a",), "/test", 'send one object like {"data": "hello"}'),
    ("my event", ({"data": ""},), "/test", "'data' must be a non-empty string"),
    ("my event", ({"data": "x" * 501},), "/test", "'data' is longer than 500 characters"),
]


CALLBACKS = [  # the page's button, the text typed first -> what its callback received
    ("#send", "hi", "send → 0 arguments"),
    ("#emit-json", "hi", 'json → 1 argument: {"namespace":"/","type":"dict","repr":"{\'text\': \'hi\'}"}'),
    ("#as-string", "hi", 'describe string → 1 argument: {"namespace":"/","type":"str","repr":"\'hi\'"}'),
    ("#as-bytes", "hi", 'describe bytes → 1 argument: {"namespace":"/","type":"bytes","repr":"b\'hi\'"}'),
    ("#as-int", "42", 'describe int → 1 argument: {"namespace":"/","type":"int","repr":"42"}'),
    ("#as-json", "hi",
     'describe JSON → 1 argument: {"namespace":"/","type":"dict","repr":"{\'value\': \'hi\'}"}'),
    ("#my-event", "", 'my event on / → 2 arguments: "one", 1'),
    ("#my-event-test", "",
     'my event on /test → 1 argument: {"namespace":"/test","type":"dict","repr":"{\'data\': \'a\'}"}'),
]


# In-process: Flask-SocketIO's test client.

def test_send_reaches_the_message_handler_and_its_callback_gets_nothing(client, capsys):
    assert client.send("hello", callback=True) == []
    assert "received message: 'hello'" in capsys.readouterr().out


def test_send_json_reaches_the_json_handler(client, capsys):
    """Only Flask-SocketIO's test client has send(json=True): it emits the event named 'json'."""
    assert client.send({"text": "hi"}, json=True, callback=True) == {
        "namespace": "/", "type": "dict", "repr": "{'text': 'hi'}"}
    assert "received json: {'text': 'hi'}" in capsys.readouterr().out


@pytest.mark.parametrize("value, type_name, printed", TYPES)
def test_named_event_receives_each_type(client, value, type_name, printed):
    assert client.emit("describe", value, callback=True) == {"namespace": "/", "type": type_name, "repr": printed}


def test_several_arguments_reach_the_handler(client, capsys):
    # The test client returns a callback's arguments as a list: two arguments look like
    # one list here, so the live and browser tests check that the callback gets two.
    assert client.emit("my event", "a", "b", "c", callback=True) == ["one", 1]
    assert "received args: 'a' 'b' 'c'" in capsys.readouterr().out


def test_same_event_on_another_namespace_reaches_the_on_event_handler(client):
    client.connect("/test")
    assert client.emit("my event", {"data": "hi"}, namespace="/test", callback=True) == {
        "namespace": "/test", "type": "dict", "repr": "{'data': 'hi'}"}


@pytest.mark.parametrize("event, arguments, namespace, error", BAD)
def test_bad_input_is_refused_and_the_server_keeps_serving(client, event, arguments, namespace, error):
    client.connect("/test")
    assert client.emit(event, *arguments, namespace=namespace, callback=True) == {"error": error}
    assert client.get_received(namespace) == [
        {"name": "bad_input", "args": [{"event": event, "error": error}], "namespace": namespace}]
    assert client.emit("describe", 1, callback=True)["type"] == "int"


def test_bad_input_without_a_callback_still_gets_bad_input(client):
    client.emit("describe", 4.5)
    assert client.get_received() == [
        {"name": "bad_input", "args": [{"event": "describe", "error": NOT_A_VALUE}], "namespace": "/"}]


# Live: app.py as a process, real clients over WebSocket.

@pytest.mark.parametrize("value, type_name, printed", TYPES)
def test_types_over_websocket(connect, value, type_name, printed):
    assert connect().call("describe", value, timeout=5) == {"namespace": "/", "type": type_name, "repr": printed}


def test_acknowledgements_over_websocket(connect):
    sio = connect()
    assert sio.call("message", "hello", timeout=5) is None  # the callback got no arguments
    assert sio.call("my event", ("a", "b", "c"), timeout=5) == ("one", 1)  # two arguments


def test_on_event_handler_over_websocket(connect):
    sio = connect(namespace="/test")
    assert sio.call("my event", {"data": "hi"}, timeout=5)["namespace"] == "/test"


def test_bad_input_over_websocket(connect):
    sio = connect()
    assert sio.call("describe", 4.5, timeout=5) == {"error": NOT_A_VALUE}
    assert sio.receive(timeout=5) == ["bad_input", {"event": "describe", "error": NOT_A_VALUE}]
    assert sio.call("describe", "still here", timeout=5)["type"] == "str"


# Browser: the page in headless Chromium.

def test_page_shows_what_each_callback_received(open_page):
    """One page, every button in turn (a page per button would cost a second each)."""
    page = open_page()
    expect(page.locator("#sid")).not_to_have_text("–")
    expect(page.locator("#test-sid")).not_to_have_text("–")
    assert page.locator("#sid").text_content() != page.locator("#test-sid").text_content()
    for button, text, acknowledged in CALLBACKS:
        page.fill("#text", text)
        page.fill("#value", text)
        page.click(button)
        expect(page.locator("#acks li").first).to_have_text(acknowledged)


def test_page_shows_bad_input(open_page):
    page = open_page()
    expect(page.locator("#sid")).not_to_have_text("–")
    page.fill("#value", "not a number")
    page.click("#as-int")
    expect(page.locator("#bad-input")).to_have_text(f"describe: {NOT_A_VALUE}")
    expect(page.locator("#acks li").first).to_have_text(f'describe int → 1 argument: {{"error":"{NOT_A_VALUE}"}}')


def test_user_text_is_text_not_html(open_page):
    page = open_page()
    expect(page.locator("#sid")).not_to_have_text("–")
    page.fill("#value", XSS)
    page.click("#as-string")
    expect(page.locator("#acks li").first).to_contain_text(json.dumps(repr(XSS)))  # as JSON.stringify shows it
    assert page.evaluate("window.pwned") is None
    expect(page.locator("img")).to_have_count(0)
