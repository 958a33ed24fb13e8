"""Chapter 02: connect and disconnect handlers on /test, auth, refusals, disconnect reasons."""
import pytest
from playwright.sync_api import expect

from tutorial.testing import next_event, until

XSS = '<img src=x onerror="window.pwned=1">'
WRONG_COUNT = "wrong number of arguments: see the events table in README.md"  # protect()'s answer

REFUSED = [  # auth -> what the client's connect_error receives
    pytest.param(None, {"message": "Connection rejected by server"}, id="no-auth-return-False"),
    pytest.param({"nom": "Ana"}, {"message": "Connection rejected by server"}, id="no-name-return-False"),
    pytest.param({"name": "x" * 41}, {"message": "the name is longer than 40 characters",
                                      "data": {"field": "name", "max_length": 40}}, id="too-long-raise"),
    pytest.param({"name": "  "}, {"message": "the name must be a non-empty string",
                                  "data": {"field": "name", "max_length": 40}}, id="blank-raise"),
    pytest.param({"name": 42}, {"message": "the name must be a non-empty string",
                                "data": {"field": "name", "max_length": 40}}, id="not-a-string-raise"),
    pytest.param({"name": "Ana\nBob"}, {"message": "the name may not contain control characters",
                                        "data": {"field": "name", "max_length": 40}}, id="newline-raise"),
]


def change(sio, **expected):
    """The next 'clients' event announcing ``expected`` (a name that joined or left); earlier tests' may come first."""
    while not expected.items() <= (clients := next_event(sio, "clients")).items():
        pass
    return clients


# In-process: Flask-SocketIO's test client.

def test_connect_handler_greets_with_the_sid_and_the_count(client_named, capsys):
    ana = client_named("Ana")
    welcome, clients = ana.get_received("/test")
    sid = welcome["args"][0]["sid"]
    assert welcome["args"] == [{"data": "Connected", "name": "Ana", "sid": sid}]
    assert clients["args"] == [{"count": 1, "names": ["Ana"], "joined": "Ana"}]
    assert f"'Ana' connected to /test as {sid}" in capsys.readouterr().out


def test_count_follows_several_clients_and_disconnects(client_named):
    ana, bob, cy = client_named("Ana"), client_named("Bob"), client_named("Cy")
    ana.get_received("/test")
    bob.disconnect("/test")
    assert ana.get_received("/test")[-1]["args"] == [
        {"count": 2, "names": ["Ana", "Cy"], "left": "Bob", "reason": "client disconnect"}]
    assert [e["args"][0]["count"] for e in cy.get_received("/test") if e["name"] == "clients"] == [3, 2]


@pytest.mark.parametrize("auth, error", REFUSED)
def test_connection_without_a_valid_name_is_refused(chapter, app, auth, error):
    refused = chapter.socketio.test_client(app, namespace="/test", auth=auth)
    assert not refused.is_connected("/test")
    assert chapter.names == {}


def test_connect_fires_once_per_namespace(chapter, app, capsys):
    """Connecting to / runs no /test handler; joining /test on the same connection runs it once."""
    client = chapter.socketio.test_client(app)
    assert chapter.names == {}
    client.connect("/test", auth={"name": "Ana"})
    assert list(chapter.names.values()) == ["Ana"]
    assert capsys.readouterr().out.count("connected to /test") == 1
    client.disconnect("/test")
    assert client.is_connected("/")
    client.disconnect()


def test_server_side_disconnect(client_named):
    ana, bob = client_named("Ana"), client_named("Bob")
    ana.get_received("/test")
    assert bob.emit("disconnect me", namespace="/test", callback=True) == []
    assert not bob.is_connected("/test")
    assert ana.get_received("/test")[-1]["args"] == [
        {"count": 1, "names": ["Ana"], "left": "Bob", "reason": "server disconnect"}]


# Live: app.py as a process, real clients over WebSocket.

@pytest.mark.parametrize("auth, error", REFUSED[:4])
def test_refusal_reason_reaches_the_client(refusal, auth, error):
    assert refusal(auth) == [error]


def test_count_over_websocket(connect_named, server):
    ana = connect_named("Ana-live")
    assert "Ana-live" in change(ana, joined="Ana-live")["names"]
    bob = connect_named("Bob-live")
    joined = change(ana, joined="Bob-live")
    assert {"Ana-live", "Bob-live"} <= set(joined["names"]) and joined["count"] == len(joined["names"])
    bob.disconnect()
    left = change(ana, left="Bob-live")
    # The Python client sends its DISCONNECT packet and closes the WebSocket at once; the
    # server reports whichever it handles first (the browser test sees "client disconnect").
    assert left["reason"] in {"client disconnect", "transport close"}
    assert "Bob-live" not in left["names"] and left["count"] == len(left["names"]) == joined["count"] - 1
    assert server.wait_for_output("'Bob-live' disconnected from /test"), server.output()


def test_server_side_disconnect_over_websocket(connect_named):
    ana, bob = connect_named("Ana-kick"), connect_named("Bob-kick")
    bob.emit("disconnect me")
    assert change(ana, left="Bob-kick")["reason"] == "server disconnect"
    until(lambda: not bob.connected, what="the server hanging up on Bob")


# Browser: the page in headless Chromium.

def connect_as(page, name):
    """Type a name in the page and connect, as a user would."""
    page.fill("#name", name)
    page.click("#connect")
    expect(page.locator("#status")).to_contain_text("connected as ")


def test_page_shows_sid_greeting_and_count(open_page):
    page = open_page()
    connect_as(page, "Ana-page")
    sid = page.evaluate("socket.id")
    expect(page.locator("#status")).to_have_text(f"connected as {sid}")
    expect(page.locator("#response")).to_have_text("Connected as Ana-page")
    expect(page.locator("#names")).to_contain_text("Ana-page")
    expect(page.locator("#log li").first).to_have_text("Ana-page joined")


def test_page_shows_why_it_was_refused(open_page):
    page = open_page()
    page.click("#connect-anonymous")
    expect(page.locator("#refusal")).to_have_text("Connection rejected by server")
    expect(page.locator("#refusal-data")).to_have_text("(none)")
    page.fill("#name", "x" * 41)
    page.click("#connect")
    expect(page.locator("#refusal")).to_have_text("the name is longer than 40 characters")
    expect(page.locator("#refusal-data")).to_have_text('{"field":"name","max_length":40}')
    expect(page.locator("#status")).to_have_text("refused")


def test_two_pages_see_each_other_come_and_go(open_page):
    ana, bob = open_page(), open_page()
    connect_as(ana, "Ana-two")
    count = int(ana.locator("#count").text_content())
    connect_as(bob, "Bob-two")
    expect(ana.locator("#log li").first).to_have_text("Bob-two joined")
    expect(ana.locator("#count")).to_have_text(str(count + 1))
    bob.click("#leave")
    expect(bob.locator("#reason")).to_have_text("io client disconnect")
    expect(ana.locator("#log li").first).to_have_text("Bob-two left (server saw: client disconnect)")
    expect(ana.locator("#count")).to_have_text(str(count))
    connect_as(bob, "Bob-two")
    bob.click("#kick-me")
    expect(bob.locator("#reason")).to_have_text("io server disconnect")
    expect(ana.locator("#log li").first).to_have_text("Bob-two left (server saw: server disconnect)")
    expect(ana.locator("#count")).to_have_text(str(count))


def test_page_shows_bad_input(open_page):
    page = open_page()
    connect_as(page, "Ana-bad")
    page.evaluate("socket.emit('disconnect me', 'please')")
    expect(page.locator("#bad-input")).to_have_text(f"disconnect me: {WRONG_COUNT}")
    expect(page.locator("#status")).to_contain_text("connected as ")


def test_names_are_text_not_html(open_page):
    ana, mallory = open_page(), open_page()
    connect_as(ana, "Ana-xss")
    connect_as(mallory, XSS)
    expect(ana.locator("#log li").first).to_have_text(f"{XSS} joined")
    expect(mallory.locator("#response")).to_have_text(f"Connected as {XSS}")
    for page in (ana, mallory):
        assert page.evaluate("window.pwned") is None
        expect(page.locator("img")).to_have_count(0)
