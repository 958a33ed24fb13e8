"""Chapter 06: rooms, the sid room, and private notifications to every tab of one user."""
import pytest
import socketio
from playwright.sync_api import expect

from tutorial.testing import next_event, received, until

XSS = '<img src=x onerror="window.pwned=1">'
NAME_RULE = "a user name is 1-20 letters, digits, '-' or '_', starting with a letter or digit"


@pytest.fixture
def client_as(chapter, app):
    """Connect in-process test clients as named users, their welcome events already read."""
    clients = []

    def client_as(username):
        client = chapter.socketio.test_client(app, auth={"username": username})
        assert client.is_connected(), f"{username} was refused"
        client.get_received()
        clients.append(client)
        return client

    yield client_as
    for client in clients:
        if client.is_connected():
            client.disconnect()


@pytest.fixture
def connect_as(connect):
    """Connect real clients to the live server as named users, their welcome events already read."""

    def connect_as(username):
        sio = connect(auth={"username": username})
        assert [sio.receive(timeout=5)[0] for _ in range(2)] == ["signed_in", "rooms"]
        return sio

    return connect_as


@pytest.fixture
def page_as(open_page):
    """Open the page in a fresh browser context and connect it as a named user."""

    def page_as(username):
        page = open_page()
        page.fill("#username", username)
        page.click("#sign-in button")
        expect(page.locator("#status")).to_contain_text(f"connected as {username.lower()} (sid ")
        return page

    return page_as


def sid(client):
    """The sid of an in-process client's connection to the default namespace."""
    return client.socketio.server.manager.sid_from_eio_sid(client.eio_sid, "/")


def join(room, *clients):
    """Put in-process clients in a room, and forget the announcements that caused."""
    for client in clients:
        client.emit("join", {"room": room})
    for client in clients:
        client.get_received()


# In-process -------------------------------------------------------------------------------------

@pytest.mark.parametrize("username", [None, "", 7, "x" * 21, "<b>bob</b>", "user:bob", "..", "_",
                                      "b\u043eb",  # a Cyrillic "о": it looks exactly like bob
                                      "\u212aim",  # the Kelvin sign, which lower() turns into an ASCII "k"
                                      "admin", "Root"])
def test_connection_without_a_valid_name_is_refused(chapter, app, username):
    assert not chapter.socketio.test_client(app, auth={"username": username}).is_connected()


def test_names_are_case_folded(client_as):
    bob, alice = client_as("Bob"), client_as("alice")
    assert bob.socketio.server.rooms(sid(bob)) == [sid(bob), "user:bob"]
    assert alice.emit("private message", {"to": "BOB", "text": "hi"}, callback=True) == {"sent": True}
    assert received(bob) == [("notification", {"from": "alice", "text": "hi"})]


def test_connection_is_in_its_sid_room_and_its_private_room(chapter, app):
    client = chapter.socketio.test_client(app, auth={"username": "alice"})
    (_, signed_in), (_, rooms) = received(client)
    assert signed_in["username"] == "alice"
    assert rooms["rooms"] == [signed_in["sid"], "user:alice"]


def test_room_list_puts_the_personal_rooms_first(client_as):
    alice = client_as("alice")
    join("zoo", alice)
    join("aardvarks", alice)
    bob = client_as("bob")  # his sid room and private room are newer than the rooms he joins
    bob.emit("join", {"room": "zoo"})
    bob.emit("join", {"room": "aardvarks"})
    assert received(bob)[-1] == ("rooms", {"rooms": [sid(bob), "user:bob", "aardvarks", "zoo"]})


def test_join_announces_to_the_room_only(client_as):
    alice, bob, carol = client_as("alice"), client_as("bob"), client_as("carol")
    alice.emit("join", {"username": "alice", "room": "lobby"})
    bob.emit("join", {"username": "bob", "room": "lobby"})
    assert received(alice) == [("message", "alice has entered the room."),
                               ("rooms", {"rooms": [sid(alice), "user:alice", "lobby"]}),
                               ("message", "bob has entered the room.")]
    assert received(bob) == [("message", "bob has entered the room."),
                             ("rooms", {"rooms": [sid(bob), "user:bob", "lobby"]})]
    assert received(carol) == []


def test_join_speaks_with_the_connection_identity_not_the_payload(client_as):
    alice, bob = client_as("alice"), client_as("bob")
    bob.emit("join", {"room": "lobby"})
    alice.emit("join", {"username": "bob", "room": "lobby"})
    error = "you are connected as alice: you cannot speak for someone else"
    assert received(alice) == [("bad_input", {"event": "join", "error": error})]
    alice.emit("join", {"room": "lobby"})
    assert ("message", "alice has entered the room.") in received(bob)


@pytest.mark.parametrize(("payload", "error"), [
    ("lobby", "send an object with a 'room' string"),
    ({"username": "alice"}, "send an object with a 'room' string"),
    ({"room": 5}, "send an object with a 'room' string"),
    ({"room": ""}, "a room name is 1-30 letters, digits, '-' or '_'"),
    ({"room": "x" * 31}, "a room name is 1-30 letters, digits, '-' or '_'"),
    ({"room": "a room"}, "a room name is 1-30 letters, digits, '-' or '_'"),
    ({"room": XSS}, "a room name is 1-30 letters, digits, '-' or '_'"),
    ({"room": "user:bob"}, "user:… rooms are private: the server alone puts each user in their own"),
    ({"room": "user:alice"}, "user:… rooms are private: the server alone puts each user in their own"),
])
@pytest.mark.parametrize("event", ["join", "leave", "close room"])
def test_bad_room_is_refused_clearly(client_as, event, payload, error):
    alice = client_as("alice")
    assert alice.emit(event, payload, callback=True) == {"error": error}
    assert received(alice) == [("bad_input", {"event": event, "error": error})]


def test_cannot_join_another_users_private_room(client_as):
    mallory, alice, bob = client_as("mallory"), client_as("alice"), client_as("bob")
    assert "error" in mallory.emit("join", {"room": "user:bob"}, callback=True)
    alice.emit("private message", {"to": "bob", "text": "for bob only"})
    assert received(bob) == [("notification", {"from": "alice", "text": "for bob only"})]
    assert "notification" not in [name for name, _ in received(mallory)]


def test_cannot_join_another_connections_sid_room(client_as):
    mallory, bob = client_as("mallory"), client_as("bob")
    for room in (sid(bob), sid(mallory)):
        assert mallory.emit("join", {"room": room}, callback=True) == {
            "error": "that name is a connection's own sid room: nobody else may use it"}
    assert mallory.socketio.server.rooms(sid(mallory)) == [sid(mallory), "user:mallory"]


def test_private_message_reaches_every_tab_of_its_user_only(client_as):
    alice, bob_tab1, bob_tab2, carol = client_as("alice"), client_as("bob"), client_as("bob"), client_as("carol")
    assert alice.emit("private message", {"to": "bob", "text": "hi bob"}, callback=True) == {"sent": True}
    for tab in (bob_tab1, bob_tab2):
        assert received(tab) == [("notification", {"from": "alice", "text": "hi bob"})]
    assert received(alice) == received(carol) == []


@pytest.mark.parametrize(("payload", "error"), [
    (None, 'send an object like {"to": "bob", "text": "hello"}'),
    ({"text": "hi"}, NAME_RULE),
    ({"to": "user:bob", "text": "hi"}, NAME_RULE),
    ({"to": "bob"}, "'text' must be a non-empty string"),
    ({"to": "bob", "text": "  "}, "'text' must be a non-empty string"),
    ({"to": "bob", "text": "x" * 501}, "'text' is longer than 500 characters"),
])
def test_bad_private_message_is_refused_clearly(client_as, payload, error):
    alice, bob = client_as("alice"), client_as("bob")
    assert alice.emit("private message", payload, callback=True) == {"error": error}
    assert received(alice) == [("bad_input", {"event": "private message", "error": error})]
    assert received(bob) == []


def test_room_message_reaches_members_only(client_as):
    alice, bob, carol = client_as("alice"), client_as("bob"), client_as("carol")
    join("lobby", alice, bob)
    assert alice.emit("room message", {"room": "lobby", "text": "hello"}, callback=True) == {"sent": True}
    message = ("room message", {"room": "lobby", "from": "alice", "text": "hello"})
    assert received(alice) == received(bob) == [message]
    assert received(carol) == []


@pytest.mark.parametrize(("payload", "error"), [
    ({"room": "lobby"}, "'text' must be a non-empty string"),
    ({"room": "lobby", "text": 3}, "'text' must be a non-empty string"),
    ({"room": "elsewhere", "text": "hi"}, "you are not in elsewhere"),
    ({"room": "user:bob", "text": "hi"}, "user:… rooms are private: the server alone puts each user in their own"),
])
def test_bad_room_message_is_refused_clearly(client_as, payload, error):
    alice, bob = client_as("alice"), client_as("bob")
    join("lobby", alice)
    assert alice.emit("room message", payload, callback=True) == {"error": error}
    assert received(alice) == [("bad_input", {"event": "room message", "error": error})]
    assert received(bob) == []


def test_after_leaving_no_more_room_messages(client_as):
    alice, bob = client_as("alice"), client_as("bob")
    join("lobby", alice, bob)
    bob.emit("leave", {"room": "lobby"})
    assert received(alice)[-1] == ("message", "bob has left the room.")
    assert received(bob) == [("rooms", {"rooms": [sid(bob), "user:bob"]})]
    alice.emit("room message", {"room": "lobby", "text": "bob is gone"})
    assert received(bob) == []
    assert bob.emit("leave", {"room": "lobby"}, callback=True) == {"error": "you are not in lobby"}


def test_disconnecting_removes_a_client_from_its_rooms(chapter, client_as):
    alice, bob = client_as("alice"), client_as("bob")
    bob.emit("join", {"room": "lobby"})
    bob_sid = sid(bob)
    bob.disconnect()
    manager = chapter.socketio.server.manager
    assert all(bob_sid not in dict(manager.get_participants("/", room)) for room in ("lobby", "user:bob", bob_sid))
    assert alice.emit("private message", {"to": "bob", "text": "anyone?"}, callback=True) == {"sent": True}


def test_close_room_removes_and_tells_everyone(client_as):
    alice, bob, carol = client_as("alice"), client_as("bob"), client_as("carol")
    join("lobby", alice, bob)
    bob.emit("close room", {"room": "lobby"})
    for member in (alice, bob):
        closed, rooms = received(member)
        assert closed == ("message", "bob closed the room lobby.")
        assert rooms[0] == "rooms" and "lobby" not in rooms[1]["rooms"]
    assert received(carol) == []
    assert alice.emit("room message", {"room": "lobby", "text": "hello?"}, callback=True) == {
        "error": "you are not in lobby"}
    assert carol.emit("close room", {"room": "lobby"}, callback=True) == {"error": "you are not in lobby"}


# Live server ------------------------------------------------------------------------------------
# Events to one connection leave in order, and a call returns once the handler's emits are queued:
# so what a client receives before a later notification proves what it did not receive.

def test_live_connection_without_a_name_is_refused(connect):
    with pytest.raises(socketio.exceptions.ConnectionError):
        connect(auth={"username": "not a name"})


def test_live_private_message_reaches_both_tabs_of_its_user_only(connect_as):
    alice, bob_tab1, bob_tab2, carol = connect_as("alice"), connect_as("bob"), connect_as("bob"), connect_as("carol")
    assert alice.call("private message", {"to": "bob", "text": "hi bob"}, timeout=5) == {"sent": True}
    for tab in (bob_tab1, bob_tab2):
        assert tab.receive(timeout=5) == ["notification", {"from": "alice", "text": "hi bob"}]
    alice.call("private message", {"to": "carol", "text": "and you?"}, timeout=5)
    assert carol.receive(timeout=5) == ["notification", {"from": "alice", "text": "and you?"}]


@pytest.mark.parametrize("target", ["user:bob", "bob's sid"])
def test_live_cannot_join_another_users_rooms(connect_as, target):
    mallory, bob = connect_as("mallory"), connect_as("bob")
    room = bob.sid if target == "bob's sid" else target
    assert "error" in mallory.call("join", {"room": room}, timeout=5)
    bob.call("private message", {"to": "bob", "text": "note to self"}, timeout=5)  # reaches user:bob and bob's sid
    bob.call("private message", {"to": "mallory", "text": "sentinel"}, timeout=5)
    assert mallory.receive(timeout=5)[0] == "bad_input"
    assert mallory.receive(timeout=5) == ["notification", {"from": "bob", "text": "sentinel"}]
    assert bob.receive(timeout=5) == ["notification", {"from": "bob", "text": "note to self"}]


@pytest.mark.parametrize(("payload", "error"), [
    ({"room": "a room"}, "a room name is 1-30 letters, digits, '-' or '_'"),
    ({"room": "lobby", "username": "bob"}, "you are connected as alice: you cannot speak for someone else"),
    ({"room": None}, "send an object with a 'room' string"),
])
def test_live_bad_join_is_refused_clearly(connect_as, payload, error):
    alice = connect_as("alice")
    assert alice.call("join", payload, timeout=5) == {"error": error}
    assert alice.receive(timeout=5) == ["bad_input", {"event": "join", "error": error}]
    alice.call("join", {"room": "lobby"}, timeout=5)
    assert alice.receive(timeout=5) == ["message", "alice has entered the room."]


@pytest.mark.parametrize("how", ["leave", "disconnect"])
def test_live_leaving_or_disconnecting_stops_room_messages(connect_as, how):
    alice, bob = connect_as("alice"), connect_as("bob")
    alice.call("join", {"room": "lobby"}, timeout=5)
    bob.call("join", {"room": "lobby"}, timeout=5)
    assert next_event(alice, "message") == "alice has entered the room."
    assert next_event(alice, "message") == "bob has entered the room."
    if how == "leave":
        bob.call("leave", {"room": "lobby"}, timeout=5)
        assert next_event(alice, "message") == "bob has left the room."
    else:
        bob.disconnect()
        bob = connect_as("bob")  # the same user on a new connection
    assert alice.call("room message", {"room": "lobby", "text": "still here?"}, timeout=5) == {"sent": True}
    alice.call("private message", {"to": "bob", "text": "sentinel"}, timeout=5)
    # bob's join (its announcement and room list) and his leave (a new list) came first; no room message
    names = ["message", "rooms", "rooms", "notification"] if how == "leave" else ["notification"]
    assert [bob.receive(timeout=5)[0] for _ in names] == names


def test_live_close_room_tells_and_removes_everyone(connect_as):
    alice, bob = connect_as("alice"), connect_as("bob")
    for member in (alice, bob):
        member.call("join", {"room": "lobby"}, timeout=5)
    bob.call("close room", {"room": "lobby"}, timeout=5)
    for member, username in ((alice, "alice"), (bob, "bob")):
        # past the announcements of the joins
        until(lambda member=member: next_event(member, "message") == "bob closed the room lobby.")
        assert member.receive(timeout=5) == ["rooms", {"rooms": [member.sid, f"user:{username}"]}]


# Browser ----------------------------------------------------------------------------------------

def room_form(page, room, button):
    """Type a room name and press Join, Leave or Close room."""
    page.fill("#room", room)
    page.click(f"#room-form button:text('{button}')")


def say(page, room, text):
    """Send a message to a room from the page."""
    page.fill("#room", room)
    page.fill("#say-text", text)
    page.click("#say button")


def notify(page, to, text):
    """Send a private message from the page and wait until the server has taken it."""
    page.fill("#to", to)
    page.fill("#private-text", text)
    page.locator("#sent").evaluate("output => output.textContent = ''")
    page.click("#private button")
    expect(page.locator("#sent")).to_have_text("sent")


def test_page_refuses_to_connect_without_a_name(open_page):
    page = open_page(websocket=False)
    page.click("#sign-in button")
    expect(page.locator("#status")).to_have_text(
        f"refused: connect with auth {{username}}: {NAME_RULE}")


def test_page_shows_its_sid_room_and_private_room(page_as):
    page = page_as("alice")
    sid = page.evaluate("socket.id")
    expect(page.locator("#rooms li")).to_have_text([f"{sid} (your sid room)", "user:alice (your private room)"])
    room_form(page, "lobby", "Join")
    expect(page.locator("#rooms li")).to_have_count(3)
    expect(page.locator("#rooms li").nth(2)).to_have_text("lobby")
    room_form(page, "lobby", "Leave")
    expect(page.locator("#rooms li")).to_have_count(2)


def test_private_message_reaches_both_pages_of_b_only(page_as):
    a, b1, b2, c = page_as("alice"), page_as("bob"), page_as("bob"), page_as("carol")
    notify(a, "bob", "lunch?")
    for b in (b1, b2):
        expect(b.locator("#toast")).to_be_visible()
        expect(b.locator("#toast")).to_have_text("alice: lunch?")
        expect(b.locator("#badge")).to_have_text("1")
    notify(a, "carol", "sentinel")
    expect(c.locator("#notifications li")).to_have_text(["from alice: sentinel"])
    expect(a.locator("#badge")).to_have_text("0")
    expect(a.locator("#toast")).to_be_hidden()


def test_room_message_reaches_only_the_room(page_as):
    a, b, c = page_as("alice"), page_as("bob"), page_as("carol")
    for page in (a, b):
        room_form(page, "lobby", "Join")
    expect(a.locator("#room-log li")).to_have_text(["alice has entered the room.", "bob has entered the room."])
    say(b, "lobby", "hello room")
    for page in (a, b):
        expect(page.locator("#room-log li").last).to_have_text("[lobby] bob: hello room")
    notify(a, "carol", "sentinel")
    expect(c.locator("#notifications li")).to_have_count(1)
    expect(c.locator("#room-log li")).to_have_count(0)


def test_close_room_button_empties_the_room(page_as):
    a, b = page_as("alice"), page_as("bob")
    for page in (a, b):
        room_form(page, "lobby", "Join")
    room_form(b, "lobby", "Close room")
    for page in (a, b):
        expect(page.locator("#room-log li").last).to_have_text("bob closed the room lobby.")
        expect(page.locator("#rooms li")).to_have_count(2)


def test_page_shows_why_others_rooms_cannot_be_joined(page_as):
    bob, mallory = page_as("bob"), page_as("mallory")
    room_form(mallory, "user:bob", "Join")
    room_form(mallory, bob.evaluate("socket.id"), "Join")
    expect(mallory.locator("#errors li")).to_have_text([
        "join: user:… rooms are private: the server alone puts each user in their own",
        "join: that name is a connection's own sid room: nobody else may use it"])
    expect(mallory.locator("#rooms li")).to_have_count(2)


def test_page_cannot_join_as_someone_else(page_as):
    page = page_as("mallory")
    page.evaluate("socket.emit('join', {username: 'bob', room: 'lobby'})")  # what a hand-made client could send
    expect(page.locator("#errors li")).to_have_text(
        ["join: you are connected as mallory: you cannot speak for someone else"])
    room_form(page, "lobby", "Join")
    expect(page.locator("#room-log li")).to_have_text(["mallory has entered the room."])


def test_page_that_left_gets_no_more_room_messages(page_as):
    a, b = page_as("alice"), page_as("bob")
    for page, name in ((a, "alice"), (b, "bob")):
        room_form(page, "lobby", "Join")
        # One after the other: had bob's join overtaken alice's, bob would see her enter.
        expect(page.locator("#room-log li").last).to_have_text(f"{name} has entered the room.")
    room_form(b, "lobby", "Leave")
    expect(a.locator("#room-log li").last).to_have_text("bob has left the room.")
    say(a, "lobby", "bob is gone")
    expect(a.locator("#room-log li").last).to_have_text("[lobby] alice: bob is gone")
    notify(a, "bob", "sentinel")
    expect(b.locator("#notifications li")).to_have_count(1)
    expect(b.locator("#room-log li")).to_have_text(["bob has entered the room."])


def test_user_text_is_never_html(page_as):
    a, b = page_as("alice"), page_as("bob")
    for page in (a, b):
        room_form(page, "lobby", "Join")
    notify(a, "bob", XSS)
    say(a, "lobby", XSS)
    expect(b.locator("#toast")).to_have_text(f"alice: {XSS}")
    expect(b.locator("#room-log li").last).to_have_text(f"[lobby] alice: {XSS}")
    assert b.locator("img").count() == 0
    assert b.evaluate("window.pwned") is None
