"""Chapter 05: broadcasts reach every client (or all but the sender); the server speaks first."""
import json
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from tutorial.testing import next_event, until

XSS = '<img src=x onerror="window.pwned=1">'
NOT_AN_OBJECT = 'send a JSON object like {"text": "hello"}'


def without_ticks(received):
    """The test client's events, minus the clock's ticks, which may come at any moment."""
    return [event for event in received if event["name"] != "tick"]


def post_notify(url, body, headers=None):
    """POST ``body`` to /notify as JSON, returning (status, answer)."""
    request = urllib.request.Request(f"{url}/notify", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture
def other(chapter, app):
    """A second in-process client on /, to see what the others receive."""
    test_client = chapter.socketio.test_client(app)
    yield test_client
    test_client.disconnect()


@pytest.mark.parametrize(("include_self", "sender_gets"), [(True, 1), (False, 0)])
def test_broadcast_reaches_everyone_or_everyone_but_me(client, other, include_self, sender_gets):
    ack = client.emit("my event", {"text": "hi", "include_self": include_self}, callback=True)
    assert ack == {"sent": True}
    response = {"name": "my response", "namespace": "/", "args": [{"text": "hi"}]}
    assert without_ticks(client.get_received()) == [response] * sender_gets
    assert without_ticks(other.get_received()) == [response]


@pytest.mark.parametrize(("payload", "error"), [
    ("hi", 'send an object like {"text": "hello", "include_self": true}'),
    (None, 'send an object like {"text": "hello", "include_self": true}'),
    ({}, "'text' must be a non-empty string"),
    ({"text": 42}, "'text' must be a non-empty string"),
    ({"text": " "}, "'text' must be a non-empty string"),
    ({"text": "x" * 501}, "'text' is longer than 500 characters"),
    ({"text": "hi", "include_self": "no"}, "'include_self' must be true or false"),
])
def test_bad_input_is_refused_and_not_broadcast(client, other, payload, error):
    assert client.emit("my event", payload, callback=True) == {"error": error}
    assert without_ticks(client.get_received()) == [
        {"name": "bad_input", "namespace": "/", "args": [{"event": "my event", "error": error}]}]
    assert without_ticks(other.get_received()) == []
    assert client.emit("my event", {"text": "still here"}, callback=True) == {"sent": True}


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://localhost"}])
def test_notify_broadcasts_from_a_plain_http_request(app, client, other, headers):
    response = app.test_client().post("/notify", json={"text": "ready"}, headers=headers)
    assert (response.status_code, response.json) == (200, {"sent": "ready"})
    notification = {"name": "notification", "namespace": "/", "args": [{"text": "ready"}]}
    assert without_ticks(client.get_received()) == [notification]
    assert without_ticks(other.get_received()) == [notification]


@pytest.mark.parametrize(("request_args", "status", "error"), [
    ({"data": {"text": "ready"}}, 415, "send JSON with Content-Type: application/json"),
    ({"json": {"text": "ready"}, "headers": {"Origin": "http://evil.example"}}, 403,
     "cross-origin requests are not accepted"),
    ({"json": {"text": ""}}, 400, "'text' must be a non-empty string"),
    ({"json": ["ready"]}, 400, NOT_AN_OBJECT),
    ({"json": {"text": "x" * 501}}, 400, "'text' is longer than 500 characters"),
    ({"data": "{not json", "content_type": "application/json"}, 400, NOT_AN_OBJECT),
    ({"data": "[" * 10_000 + "]" * 10_000, "content_type": "application/json"}, 400, NOT_AN_OBJECT),
])
def test_notify_refuses_bad_or_cross_origin_requests(app, client, request_args, status, error):
    response = app.test_client().post("/notify", **request_args)
    assert (response.status_code, response.json) == (status, {"error": error})
    assert without_ticks(client.get_received()) == []


def test_one_clock_ticks_for_everyone_and_stops_when_nobody_listens(chapter):
    app = chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test", TICK_SECONDS=0.02)
    first = chapter.socketio.test_client(app)
    clock = chapter.clock
    second = chapter.socketio.test_client(app)
    assert chapter.clock is clock, "a second connection started a second clock"
    ticks = {first: [], second: []}

    def two_ticks_each():
        for test_client, got in ticks.items():
            got += [event["args"][0]["count"] for event in test_client.get_received()]
        return all(len(got) >= 2 for got in ticks.values())

    until(two_ticks_each, what=f"two ticks for each client: {ticks}")
    for got in ticks.values():
        assert got[1] == got[0] + 1, "two clocks would send every count twice"
    first.disconnect()
    second.disconnect()
    clock.join(timeout=5)
    assert not clock.is_alive() and chapter.clock is None


def test_include_self_false_never_echoes_to_the_sender(connect):
    sender, receiver = connect(), connect()
    # The ack leaves after the broadcast, on the same connection: were the sender
    # included, its copy would be queued before the ack, so before "visible" below.
    assert sender.call("my event", {"text": "secret", "include_self": False}, timeout=5) == {"sent": True}
    assert next_event(receiver, "my response") == {"text": "secret"}
    assert sender.call("my event", {"text": "visible"}, timeout=5) == {"sent": True}
    assert next_event(sender, "my response") == {"text": "visible"}
    assert next_event(receiver, "my response") == {"text": "visible"}


def test_bad_input_over_websocket(connect):
    sio = connect()
    assert sio.call("my event", {"text": ""}, timeout=5) == {"error": "'text' must be a non-empty string"}
    assert next_event(sio, "bad_input") == {"event": "my event", "error": "'text' must be a non-empty string"}


def test_http_notify_reaches_every_live_client(server, connect):
    first, second = connect(), connect()
    assert post_notify(server.url, {"text": "ready"}) == (200, {"sent": "ready"})
    assert next_event(first, "notification") == {"text": "ready"}
    assert next_event(second, "notification") == {"text": "ready"}
    assert post_notify(server.url, {"text": "ready"}, {"Origin": "http://evil.example"}) == (
        403, {"error": "cross-origin requests are not accepted"})


def test_one_clock_ticks_once_a_second_for_all(connect):
    first, second = connect(), connect()
    counts = []
    while len(counts) < 2:
        event = first.receive(timeout=3)
        if event[0] == "tick":
            assert re.fullmatch(r"\d\d:\d\d:\d\d", event[1]["time"])
            counts.append(event[1]["count"])
    assert counts[1] == counts[0] + 1, "two clocks would send every count twice"
    assert second.receive(timeout=3)[0] == "tick"


def test_two_pages_see_each_others_messages_without_reload(open_page):
    first, second = open_page(), open_page()
    expect(second.locator("#status")).to_contain_text("connected as ")
    first.fill("#text", "hello from the first")
    first.click("#send")
    for page in (first, second):
        expect(page.locator("#messages li")).to_have_text(["hello from the first"])
    second.fill("#text", "only for the others")
    second.check("#others-only")
    second.click("#send")
    expect(first.locator("#messages li")).to_have_text(["hello from the first", "only for the others"])
    expect(second.locator("#sent")).to_have_text("sent")  # the ack comes after any copy for us
    expect(second.locator("#messages li")).to_have_text(["hello from the first"])
    second.uncheck("#others-only")
    second.fill("#text", "for everyone")
    second.click("#send")
    expect(second.locator("#messages li")).to_have_text(["hello from the first", "for everyone"])
    expect(first.locator("#messages li")).to_have_text(
        ["hello from the first", "only for the others", "for everyone"])


def test_a_notification_posted_by_one_page_reaches_the_other_without_reload(open_page):
    first, second = open_page(), open_page()
    expect(second.locator("#status")).to_contain_text("connected as ")
    second.evaluate("window.notReloaded = true")
    first.fill("#notify-text", "the report is ready")
    first.click("#notify")
    expect(first.locator("#notify-status")).to_have_text("200: sent to everyone")
    expect(second.locator("#notifications li")).to_have_text(["the report is ready"])
    assert second.evaluate("window.notReloaded") is True
    expect(second.locator("#clock")).to_contain_text("tick ")


def test_page_shows_bad_input(open_page):
    page = open_page()
    page.fill("#text", " ")
    page.click("#send")
    expect(page.locator("#sent")).to_have_text("'text' must be a non-empty string")
    expect(page.locator("#errors li")).to_have_text(["my event: 'text' must be a non-empty string"])
    page.fill("#notify-text", " ")
    page.click("#notify")
    expect(page.locator("#notify-status")).to_have_text("'text' must be a non-empty string")


def test_user_text_is_shown_never_run(open_page):
    first, second = open_page(), open_page()
    expect(second.locator("#status")).to_contain_text("connected as ")
    first.fill("#text", XSS)
    first.click("#send")
    first.fill("#notify-text", XSS)
    first.click("#notify")
    for page in (first, second):
        expect(page.locator("#messages li")).to_have_text([XSS])
        expect(page.locator("#notifications li")).to_have_text([XSS])
        assert page.locator("img").count() == 0
        assert page.evaluate("window.pwned") is None
