"""Chapter 10: notifications through Redis reach the right user's tabs in any process, and none is lost."""
import re
import secrets
import signal
import socket
import time

import psutil
import pytest
import redis
import requests
import socketio
from playwright.sync_api import expect

import notification_store
from tutorial import ASYNC_MODES
from tutorial.servers import free_port
from tutorial.testing import next_event, received_until, until

LONG = "x" * 501
UNAVAILABLE = "notifications unavailable: cannot reach Redis"
ID = re.compile(r"\d+-\d+")


def notifications(received):
    """The notifications among a test client's received events, pushed or replayed."""
    found = []
    for event in received:
        if event["name"] == "notification":
            found.append(event["args"][0])
        elif event["name"] == "replay":
            found.extend(event["args"][0]["notifications"])
    return found


def texts(items):
    return [n["text"] for n in items]


def key():
    """A fresh idempotency key, as the page makes one per message."""
    return secrets.token_hex(8)


def send(client, to, text, **extra):
    """Send a notification from an in-process test client; its acknowledgement."""
    return client.emit("send_notification", {"to": to, "text": text, "key": key(), **extra}, callback=True)


def page_send(page, to, text):
    """Send from the page's form."""
    page.fill("#to", to)
    page.fill("#text", text)
    page.click("#send button")


# In-process: the login, the validation, the stored notifications.

def test_the_page_asks_for_a_name_then_remembers_it(app, name):
    http = app.test_client()
    assert 'id="login"' in http.get("/").get_data(as_text=True)
    user = name("ann")
    response = http.post("/login", data={"username": user.upper()})  # names are case-folded
    assert response.status_code == 302
    assert "SameSite=Lax" in response.headers["Set-Cookie"]
    page = http.get("/").get_data(as_text=True)
    assert f'<b id="user">{user}</b>' in page and 'id="login"' not in page
    http.post("/logout")
    assert 'id="login"' in http.get("/").get_data(as_text=True)


@pytest.mark.parametrize("bad, error", [
    ("", "a name is 1 to 32 letters"), ("two words", "a name is 1 to 32 letters"),
    ("x" * 33, "a name is 1 to 32 letters"), ("<script>", "a name is 1 to 32 letters"),
    ("..", "a name is 1 to 32 letters"), ("b\u043eb", "a name is 1 to 32 letters"),  # a Cyrillic "о"
    ("\u212aate", "a name is 1 to 32 letters"),  # the Kelvin sign, which lower() turns into "k"
    ("admin", "admin is a reserved name"), ("Root", "root is a reserved name"),
])
def test_login_refuses_a_bad_or_reserved_name(app, bad, error):
    http = app.test_client()
    response = http.post("/login", data={"username": bad})
    assert response.status_code == 400
    assert error in response.get_data(as_text=True)
    assert 'id="login"' in http.get("/").get_data(as_text=True)


def test_login_from_another_site_is_refused(app, name):
    http = app.test_client()
    response = http.post("/login", data={"username": name("ann")}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    assert 'id="login"' in http.get("/").get_data(as_text=True)


@pytest.mark.parametrize("auth", [None, {"user": "bob"}, {"last_id": "0-0"}])
def test_a_connection_without_login_is_refused(chapter, app, auth):
    assert not chapter.socketio.test_client(app, auth=auth).is_connected()


def test_a_notification_reaches_every_tab_of_its_recipient_and_nobody_else(log_in, name):
    alice, bob, carol = name("alice"), name("bob"), name("carol")
    sender, tabs, other = log_in(alice), [log_in(bob), log_in(bob)], log_in(carol)
    answer = send(sender, bob, "hi")
    assert ID.fullmatch(answer["id"])
    for tab in tabs:
        assert notifications(received_until(tab, "notification")) == [
            {"id": answer["id"], "prev": "0-0", "to": bob, "from": alice, "text": "hi",
             "at": pytest.approx(time.time(), abs=5)}]
    send(sender, carol, "marker")
    assert texts(notifications(received_until(other, "notification"))) == ["marker"]


@pytest.mark.parametrize("payload, error", [
    ("hello", "send an object {to, text, key}"),
    (["bob", "hi"], "send an object {to, text, key}"),
    ({"text": "hi", "key": "k" * 8}, "a name is 1 to 32"),
    ({"to": 5, "text": "hi", "key": "k" * 8}, "a name is 1 to 32"),
    ({"to": "RECIPIENT", "text": "", "key": "k" * 8}, "the message is empty"),
    ({"to": "RECIPIENT", "text": "   ", "key": "k" * 8}, "the message is empty"),
    ({"to": "RECIPIENT", "text": 42, "key": "k" * 8}, "the message is empty"),
    ({"to": "RECIPIENT", "text": LONG, "key": "k" * 8}, "longer than 500 characters"),
    ({"to": "RECIPIENT", "text": "hi"}, "'key' must be 8 to 64"),
    ({"to": "RECIPIENT", "text": "hi", "key": "short"}, "'key' must be 8 to 64"),
    ({"to": "nobody-ever", "text": "hi", "key": "k" * 8}, "nobody called 'nobody-ever' has logged in yet"),
])
def test_bad_notifications_are_refused_and_nothing_is_stored(log_in, name, redis_url, payload, error):
    recipient = name("bob")
    log_in(recipient).disconnect()
    sender = log_in(name("alice"))
    sender.get_received()
    if isinstance(payload, dict) and payload.get("to") == "RECIPIENT":
        payload = {**payload, "to": recipient}
    answer = sender.emit("send_notification", payload, callback=True)
    assert error in answer["error"]
    assert sender.get_received() == [
        {"name": "bad_input", "namespace": "/", "args": [{"event": "send_notification", "error": answer["error"]}]}]
    with redis.Redis.from_url(redis_url) as r:
        assert r.xlen(f"notifications:{recipient}") == 0


@pytest.mark.parametrize("event, args, error", [
    ("mark_read", [{"up_to": 3}], "'up_to' must be a notification id"),
    ("mark_read", [{"up_to": "-1"}], "'up_to' must be a notification id"),
    ("mark_read", [None], "'up_to' must be a notification id"),
    ("sync", [{"last_id": 7}], "'last_id' must be a notification id"),
    ("sync", [{"last_id": 2 ** 64}], "'last_id' must be a notification id"),
    ("sync", [{"last_id": f"{2 ** 64}-0"}], "'last_id' must be a notification id"),
    ("sync", [[1]], "send an object {last_id}"),
    ("older", [{"before": "x"}], "'before' must be a notification id"),
    ("join", [{"room": "user:bob"}], "rooms are not chosen by clients"),
    ("sync", [], "wrong number of arguments"),
    ("send_notification", [{}, {}], "wrong number of arguments"),
    ("connect", [{"last_id": "0-0"}], "'connect' is sent by Socket.IO itself"),
    ("disconnect", ["forged"], "'disconnect' is sent by Socket.IO itself"),
])
def test_malformed_events_get_a_clear_error(log_in, name, event, args, error):
    client = log_in(name("carol"))
    client.get_received()
    answer = client.emit(event, *args, callback=True)
    assert error in answer["error"]
    assert client.get_received()[0]["args"][0] == {"event": event, "error": answer["error"]}
    assert client.is_connected()


def test_someone_elses_room_stays_closed(log_in, name):
    bob, carol = name("bob"), name("carol")
    intruder = log_in(carol)
    intruder.emit("join", {"room": f"user:{bob}"}, callback=True)
    intruder.emit("connect", {"username": bob}, callback=True)  # the forged lifecycle event changes nothing
    send(log_in(bob), bob, "for bob only")
    send(log_in(bob), carol, "for carol")
    assert texts(notifications(received_until(intruder, "notification"))) == ["for carol"]


def test_a_bad_last_id_gets_an_error_and_the_newest_page(log_in, name):
    bob = name("bob")
    first = log_in(bob)
    send(first, bob, "one")
    received_until(first, "notification")  # pushed already: the next tab gets it only from the replay
    received = log_in(bob, auth={"last_id": "one"}).get_received()
    assert {"event": "connect", "error": "'last_id' must be a notification id such as '1700000000000-0'"} in [
        e["args"][0] for e in received if e["name"] == "bad_input"]
    assert texts(notifications(received)) == ["one"]


def test_read_marks_are_stored_and_never_pass_the_last_notification(log_in, name):
    bob = name("bob")
    tab = log_in(bob)
    first, second = send(tab, bob, "one")["id"], send(tab, bob, "two")["id"]
    assert tab.emit("mark_read", {"up_to": "99999999999999-0"}, callback=True) == {"read_up_to": second}
    assert tab.emit("mark_read", {"up_to": first}, callback=True) == {"read_up_to": second}
    replay = log_in(bob, auth={"last_id": second}).get_received()[0]["args"][0]
    assert (replay["read_up_to"], replay["notifications"]) == (second, [])


def test_the_same_key_is_stored_once(log_in, name, redis_url):
    """Issue 11, case 4 (idempotency): an ambiguous send sent again with its key gets the same id, one copy."""
    alice, bob = name("alice"), name("bob")
    log_in(bob)
    sender, same = log_in(alice), key()
    answers = [sender.emit("send_notification", {"to": bob, "text": "once", "key": same}, callback=True)
               for _ in range(3)]
    assert answers[0] == answers[1] == answers[2] and ID.fullmatch(answers[0]["id"])
    with redis.Redis.from_url(redis_url) as r:
        assert r.xlen(f"notifications:{bob}") == 1


def test_a_sender_is_limited_and_told_so(make_app, chapter, name, redis_url):
    """Issue 11, case 5 (floods): one sender, a burst: exactly the limit is stored, the rest refused clearly."""
    app = make_app()
    app.config["RATE_LIMIT"] = (5, 60)
    alice, bob = name("alice"), name("bob")
    clients = []
    for user in (bob, alice):
        http = app.test_client()
        http.post("/login", data={"username": user})
        clients.append(chapter.socketio.test_client(app, flask_test_client=http))
    answers = [send(clients[1], bob, f"flood {n}") for n in range(8)]
    assert sum("id" in answer for answer in answers) == 5
    assert all(answer["error"].startswith("too many notifications: at most 5 every 60 s") for answer in answers[5:])
    with redis.Redis.from_url(redis_url) as r:
        assert r.xlen(f"notifications:{bob}") == 5
    for client in clients:
        client.disconnect()


def test_replays_are_paged_and_limited(log_in, name, notify):
    """Issue 11, case 5 (floods): a sync answers at most a page, and one connection cannot ask endlessly."""
    bob = name("bob")
    log_in(bob).disconnect()
    for n in range(notification_store.PAGE + 5):
        notify(bob, f"n{n}")
    tab = log_in(bob)
    first = tab.get_received()[0]["args"][0]
    assert (len(first["notifications"]), first["notifications"][-1]["text"]) == (notification_store.PAGE, "n104")
    answer = tab.emit("sync", {"last_id": "0-0"}, callback=True)
    assert (len(answer["notifications"]), answer["more"]) == (notification_store.PAGE, True)
    rest = tab.emit("sync", {"last_id": answer["notifications"][-1]["id"]}, callback=True)
    assert (texts(rest["notifications"]), rest["more"]) == (["n100", "n101", "n102", "n103", "n104"], False)
    older = tab.emit("older", {"before": first["notifications"][0]["id"]}, callback=True)
    assert (texts(older["notifications"]), older["more"]) == (["n0", "n1", "n2", "n3", "n4"], False)
    answers = [tab.emit("sync", {"last_id": rest["notifications"][-1]["id"]}, callback=True) for _ in range(10)]
    assert sum("error" in answer for answer in answers) == 3  # 10 requests per 10 s: 7 more after the 3 above
    assert answers[-1]["error"] == "too many requests: at most 10 every 10 s"


def test_garbage_and_forged_doorbells_on_the_channel_deliver_nothing(log_in, name, redis_url):
    """Issue 11, case 3: only stored notifications reach a page, whatever is PUBLISHed by hand."""
    bob = name("bob")
    tab = log_in(bob)
    received_until(tab, "status")
    with redis.Redis.from_url(redis_url) as r:
        for garbage in ("not json", '{"to": "x"}', "[]",
                        '{"id": 1000000, "to": "%s", "from": "admin", "text": "fake"}' % bob,
                        '{"id": "9999999999999-0", "to": "%s"}' % bob):
            r.publish("notifications", garbage)
    sent = send(log_in(bob), bob, "still working")
    assert notifications(received_until(tab, "notification")) == [
        {"id": sent["id"], "prev": "0-0", "to": bob, "from": bob, "text": "still working", "at": pytest.approx(
            time.time(), abs=5)}]


def test_pages_load_and_say_so_while_redis_is_down(make_app, name):
    http = make_app(f"redis://127.0.0.1:{free_port()}/0").test_client()  # nothing listens there
    assert http.get("/").status_code == 200
    response = http.post("/login", data={"username": name("ann")})
    assert response.status_code == 503
    assert UNAVAILABLE in response.get_data(as_text=True)


def test_a_logged_in_page_still_connects_and_shows_redis_is_down(chapter, make_app, durable_redis, name):
    app = make_app(durable_redis.url)
    http = app.test_client()
    http.post("/login", data={"username": name("ann")})
    durable_redis.stop()
    assert 'id="bell"' in http.get("/").get_data(as_text=True)
    tab = chapter.socketio.test_client(app, flask_test_client=http)
    assert tab.is_connected()
    assert {"name": "status", "namespace": "/",
            "args": [{"available": False, "error": UNAVAILABLE}]} in tab.get_received()
    assert send(tab, "ann", "hi") == {"error": UNAVAILABLE, "retry": True}
    tab.disconnect()


def test_the_private_redis_has_a_password(durable_redis):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=durable_redis.port).ping()
    assert redis.Redis.from_url(durable_redis.url).ping()


# The command-line publisher on its own.

@pytest.mark.parametrize("args, url, code, error", [
    (["--to", "nobody-ever", "hi"], None, 1, "nobody called 'nobody-ever' has logged in yet"),
    (["--to", "RECIPIENT", ""], None, 1, "the message is empty"),
    (["--to", "RECIPIENT", LONG], None, 1, "longer than 500 characters"),
    (["--to", "RECIPIENT", "hi"], "redis://127.0.0.1:1/0", 1, "cannot reach Redis"),
    (["--to", "RECIPIENT", "hi"], "", 2, "set REDIS_URL"),
    (["hi"], None, 2, "the following arguments are required: --to"),
])
def test_the_publisher_fails_loudly(app, publish, name, args, url, code, error):
    recipient = name("bob")
    app.test_client().post("/login", data={"username": recipient})
    args = [recipient if a == "RECIPIENT" else a for a in args]
    result = publish(*args) if url is None else publish(*args, url=url)
    assert (result.returncode, result.stdout) == (code, "")
    assert error in result.stderr
