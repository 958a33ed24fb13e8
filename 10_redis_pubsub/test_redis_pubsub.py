"""Chapter 10: notifications through Redis reach the right user's tabs in any process, and none is lost."""
import json
import re
import secrets
import socket
import subprocess
import sys
import time

import notification_store
import psutil
import pytest
import redis
import requests
import socketio
from playwright.sync_api import expect

from tutorial import ASYNC_MODES
from tutorial.servers import free_port
from tutorial.testing import next_event, received_until

LONG = "x" * 501
UNAVAILABLE = "notifications unavailable: cannot reach Redis"
ID = re.compile(r"\d+-\d+")
NOBODY = "nobody called 'nobody-ever' has logged in since this notification store started"


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
            {"id": answer["id"], "prev": "0-0", "n": 1, "to": bob, "from": alice, "text": "hi",
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
    ({"to": "nobody-ever", "text": "hi", "key": "k" * 8}, NOBODY),
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
    [replay] = [e["args"][0] for e in log_in(bob, auth={"last_id": second}).get_received() if e["name"] == "replay"]
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
    """Issue 11, case 5 and issue 24, item 4: a sync answers at most a page, and one user cannot ask endlessly:
    the limit counts replays on connecting too, for all the user's tabs (in Redis: every process shares it)."""
    bob = name("bob")
    log_in(bob).disconnect()  # replay 1
    for n in range(notification_store.PAGE + 5):
        notify(bob, f"n{n}")
    tab = log_in(bob)  # 2
    first = tab.get_received()[0]["args"][0]
    assert (len(first["notifications"]), first["notifications"][-1]["text"]) == (notification_store.PAGE, "n104")
    answer = tab.emit("sync", {"last_id": "0-0"}, callback=True)  # 3
    assert (len(answer["notifications"]), answer["more"]) == (notification_store.PAGE, True)
    rest = tab.emit("sync", {"last_id": answer["notifications"][-1]["id"]}, callback=True)  # 4
    assert (texts(rest["notifications"]), rest["more"]) == (["n100", "n101", "n102", "n103", "n104"], False)
    older = tab.emit("older", {"before": first["notifications"][0]["id"]}, callback=True)  # 5
    assert (texts(older["notifications"]), older["more"]) == (["n0", "n1", "n2", "n3", "n4"], False)
    other = log_in(bob)  # 6
    answers = [(tab, other)[n % 2].emit("sync", {"last_id": rest["notifications"][-1]["id"]}, callback=True)
               for n in range(20)]
    assert sum("error" in answer for answer in answers) == 6  # 20 per 10 s: 14 more after the 6 above
    assert answers[-1]["error"].startswith("too many requests: at most 20 every 10 s, try again in ")
    assert answers[-1]["retry"] is True
    late = log_in(bob)  # connecting is replaying too: refused for now, and told why
    assert [e["args"][0] for e in late.get_received() if e["name"] == "status"][0]["error"].startswith(
        "too many requests")


def test_garbage_and_forged_doorbells_on_the_channel_deliver_nothing(log_in, name, redis_url):
    """Issue 11, case 3: only stored notifications reach a page, whatever is PUBLISHed by hand."""
    bob = name("bob")
    tab = log_in(bob)
    received_until(tab, "status")
    with redis.Redis.from_url(redis_url) as r:
        for garbage in ("not json", '{"to": "x"}', "[]",
                        json.dumps({"id": 1000000, "to": bob, "from": "admin", "text": "fake"}),
                        json.dumps({"id": "9999999999999-0", "to": bob})):
            r.publish("notifications", garbage)
    sent = send(log_in(bob), bob, "still working")
    assert notifications(received_until(tab, "notification")) == [
        {"id": sent["id"], "prev": "0-0", "n": 1, "to": bob, "from": bob, "text": "still working", "at": pytest.approx(
            time.time(), abs=5)}]


def test_pages_load_and_say_so_while_redis_is_down(make_app, name):
    http = make_app(f"redis://127.0.0.1:{free_port()}/0", listening=False).test_client()  # nothing listens there
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
    (["--to", "nobody-ever", "hi"], None, 1, NOBODY),
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


def test_the_publisher_run_as_printed_at_start_says_nobody_logged_in_yet(publish, durable_redis):
    # app.py prints the publish command as it starts, before anyone has logged in: Redis is reachable and
    # lost nothing, it knows no users yet. (It said "cannot reach Redis: Redis lost its data".)
    result = publish("--to", "bob", "hello", url=durable_redis.url)
    assert (result.returncode, result.stdout) == (1, "")
    assert "cannot reach Redis" not in result.stderr
    assert "it has just started" in result.stderr and "log in as the recipient" in result.stderr


# Live: two server processes sharing one Redis, real clients over WebSocket.

def test_a_connection_without_login_is_told_why(servers):
    anonymous, refusals = socketio.Client(), []
    anonymous.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect(servers[0].url, auth={"user": "bob"}, transports=["websocket"], wait_timeout=5)
    assert refusals == [{"message": "log in first"}]


def call_send(sio, to, text):
    """Send a notification from a live client; its acknowledgement."""
    return sio.call("send_notification", {"to": to, "text": text, "key": key()}, timeout=5)


def test_a_notifies_b_across_two_processes(servers, connect, name, notify):
    alice, bob, carol = name("alice"), name("bob"), name("carol")
    sender = connect(servers[0], alice)
    tabs = [connect(servers[0], bob), connect(servers[1], bob)]
    other = connect(servers[1], carol)
    call_send(sender, bob, "hello bob")
    for tab in tabs:
        assert next_event(tab, "notification")["text"] == "hello bob"
    notify(bob, "marker")
    notify(carol, "marker")
    for client in [*tabs, other]:
        assert next_event(client, "notification")["text"] == "marker"  # bob's came once, carol got none of it


@pytest.mark.parametrize("via", ["channel", "queue"])
def test_the_publisher_reaches_a_connected_user(servers, connect, name, publish, via):
    bob = name("bob")
    tab = connect(servers[1], bob)
    started = time.time()
    result = publish("--to", bob, "--sender", "cron", "--via", via, "backup done")
    assert result.returncode == 0, result.stderr
    entry_id = re.fullmatch(rf"notification (\d+-\d+) for {bob} stored and pushed via {via}\n", result.stdout)[1]
    notification = next_event(tab, "notification")
    # Stamped while publish.py ran, however long a busy machine made that (its import alone can take seconds).
    assert started - 1 <= notification.pop("at") <= time.time() + 1  # Redis's clock and ours: the same machine
    assert notification == {"id": entry_id, "prev": "0-0", "n": 1, "to": bob, "from": "cron", "text": "backup done"}


def test_an_offline_user_gets_everything_on_connect_in_order_once(servers, connect, log_in_over_http, name, notify):
    alice, bob = name("alice"), name("bob")
    sender = connect(servers[0], alice)
    log_in_over_http(servers[1], bob)
    sent = [call_send(sender, bob, text)["id"] for text in ("one", "two", "three")]
    tab = connect(servers[1], bob)
    replay = next_event(tab, "replay")
    assert [(n["prev"], n["id"], n["text"]) for n in replay["notifications"]] == [
        ("0-0", sent[0], "one"), (sent[0], sent[1], "two"), (sent[1], sent[2], "three")]
    notify(bob, "marker")
    assert next_event(tab, "notification")["text"] == "marker"  # nothing repeated before it


def test_a_dropped_connection_gets_the_gap_and_no_duplicates(servers, connect, name, notify):
    bob = name("bob")
    tab = connect(servers[0], bob)
    first = notify(bob, "before")
    assert next_event(tab, "notification")["id"] == first
    tab.disconnect()
    notify(bob, "missed 1")
    notify(bob, "missed 2")
    again = connect(servers[1], bob, auth={"last_id": first})
    assert texts(next_event(again, "replay")["notifications"]) == ["missed 1", "missed 2"]
    notify(bob, "live")
    assert next_event(again, "notification")["text"] == "live"


def test_marking_read_updates_every_tab_in_every_process(servers, connect, name, notify):
    bob = name("bob")
    tabs = [connect(servers[0], bob), connect(servers[1], bob)]
    entry_id = notify(bob, "read me")
    for tab in tabs:
        assert next_event(tab, "notification")["id"] == entry_id
    assert tabs[0].call("mark_read", {"up_to": entry_id}, timeout=5) == {"read_up_to": entry_id}
    for tab in tabs:
        assert next_event(tab, "read") == {"read_up_to": entry_id}


def test_forged_publishes_reach_no_page(servers, connect, name, notify, redis_url):
    """Issue 11, case 3: a raw PUBLISH (a fake notification, a doorbell for nothing stored) shows nothing."""
    bob = name("bob")
    tabs = [connect(server, bob) for server in servers]
    with redis.Redis.from_url(redis_url) as r:
        r.publish("notifications", json.dumps({"id": 1000000, "to": bob, "from": "admin", "text": "fake"}))
        r.publish("notifications", json.dumps({"id": "9999999999999-0", "to": bob}))
    real = notify(bob, "real")
    for tab in tabs:
        assert next_event(tab, "notification") == {"id": real, "prev": "0-0", "n": 1, "to": bob, "from": "tester",
                                                    "text": "real", "at": pytest.approx(time.time(), abs=5)}


def test_a_sender_over_the_limit_is_refused_in_every_process(servers, connect, name, log_in_over_http, redis_url):
    """Issue 11, case 5: the per-sender limit lives in Redis, so two processes share it: exactly 60 stored."""
    alice, bob = name("alice"), name("bob")
    log_in_over_http(servers[0], bob)
    senders = [connect(server, alice) for server in servers]
    answers = [call_send(senders[n % 2], bob, f"flood {n}") for n in range(64)]
    assert sum("id" in answer for answer in answers) == 60
    assert all(answer["error"].startswith("too many notifications: at most 60 every 10 s") for answer in answers[60:])
    with redis.Redis.from_url(redis_url) as r:
        assert r.xlen(f"notifications:{bob}") == 60


def test_eventlet_holds_5000_connections(start_servers, redis_url, connect, name, notify):
    """Issue 11, case 6: eventlet's server admits connection 5,001 (its default pool stopped at 1,024)."""
    [server] = start_servers(1, "eventlet", redis_url)
    idle = []
    try:
        for n in range(1, 5001):  # connected, asking nothing: each holds one of the server's green threads
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
            if n % 40 == 0:  # one request answered: the 39 before it were accepted (its listen queue holds 50)
                idle[-1].sendall(b"GET /missing HTTP/1.1\r\nHost: test\r\n\r\n")
                assert idle[-1].recv(12) == b"HTTP/1.1 404"
        bob = name("bob")
        tab = connect(server, bob)
        notify(bob, "still serving")
        assert next_event(tab, "notification")["text"] == "still serving"
        assert len(psutil.Process(server.process.pid).net_connections()) >= 5001
    finally:
        for sock in idle:
            sock.close()


# In the browser: the page's own logic (notifications.js) under the faults of issue 11.

def page_items(page):
    return expect(page.locator("#notifications li"))


def test_a_missed_push_is_recovered_at_once(servers, open_page, name, redis_url, notify):
    """Issue 11, case 1: a push that never came (its doorbell lost) is fetched when the next one shows the gap."""
    bob = name("bob")
    page = open_page(servers[0].url, bob)
    expect(page.locator("#status")).to_have_text(f"connected as {bob}")
    notify(bob, "one")
    page_items(page).to_have_text(["tester: one"])
    with redis.Redis.from_url(redis_url) as r:  # stored, but nobody told: a listener that lost its connection
        notification_store.store(notification_store.connect(redis_url), bob, "tester", "two", key(), ring=False,
                                 limit=None)
        assert r.xlen(f"notifications:{bob}") == 2
    notify(bob, "three")
    page_items(page).to_have_text(["tester: three", "tester: two", "tester: one"])
    expect(page.locator("#unread")).to_have_text("3")


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_redis_restarts_empty_and_ids_never_repeat(durable_redis, start_servers, open_page, connect, name,
                                                   async_mode):
    """Issue 11, case 2: Redis loses everything; sends work at once, the page starts again, nothing dropped
    (issue 22, item 3: nor wiped without a word)."""
    alice, bob = name("alice"), name("bob")
    [server] = start_servers(1, async_mode, durable_redis.url)
    watcher, sender = connect(server, bob), connect(server, alice)
    page = open_page(server.url, bob)
    expect(page.locator("#status")).to_have_text(f"connected as {bob}")
    before = [call_send(sender, bob, text)["id"] for text in ("one", "two")]
    page_items(page).to_have_text([f"{alice}: two", f"{alice}: one"])

    durable_redis.forget()
    durable_redis.start()
    next_event(watcher, "resync", timeout=10)  # the server is back on Redis, and knows bob again
    after = call_send(sender, bob, "after the reset")["id"]
    assert notification_store.ID.fullmatch(after) and after not in before
    assert [int(part) for part in after.split("-")] > [int(part) for part in before[-1].split("-")]
    # Issue 22, item 3: what the page showed stays, marked as no longer stored, and the page says why.
    page_items(page).to_have_text([f"{alice}: after the reset", f"{alice}: two", f"{alice}: one"])
    expect(page.locator("#notifications li.gone")).to_have_text([f"{alice}: two", f"{alice}: one"])
    expect(page.locator("#notices li")).to_have_text(["the notification store was reset: older notifications are gone"])
    page.reload()
    page_items(page).to_have_text([f"{alice}: after the reset"])


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_an_ambiguous_send_shows_sending_then_is_stored_once(durable_redis, start_servers, open_page, connect, name,
                                                            publish, async_mode):
    """Issue 11, case 4: while Redis is away the page says "sending…", sends again with its key, stores once."""
    alice, bob = name("alice"), name("bob")
    [server] = start_servers(1, async_mode, durable_redis.url)
    tab = connect(server, bob)
    page = open_page(server.url, alice)
    page_send(page, bob, "before")
    expect(page.locator("#send-result")).to_have_text("sent")
    before = next_event(tab, "notification")["id"]

    durable_redis.stop()
    assert next_event(tab, "status") == {"available": False, "error": UNAVAILABLE}
    expect(page.locator("#status")).to_have_text(UNAVAILABLE)
    page_send(page, bob, "during")
    expect(page.locator("#send-result")).to_have_text("sending…")
    failed = publish("--to", bob, "lost too", url=durable_redis.url)
    assert failed.returncode == 1 and "cannot reach Redis" in failed.stderr
    assert requests.get(server.url, timeout=5).status_code == 200  # pages still load

    durable_redis.start()
    expect(page.locator("#send-result")).to_have_text("sent", timeout=10000)
    expect(page.locator("#status")).to_have_text(f"connected as {alice}")
    # Whether its doorbell rang before this process listened again or after, bob's tab can have it.
    assert texts(tab.call("sync", {"last_id": before}, timeout=5)["notifications"]) == ["during"]
    with redis.Redis.from_url(durable_redis.url, decode_responses=True) as r:
        assert [fields["text"] for _, fields in r.xrange(f"notifications:{bob}")] == ["before", "during"]


def test_a_flooded_page_shows_the_newest_page_and_older_on_demand(servers, open_page, log_in_over_http, name, notify):
    """Issue 11, case 5: 150 notifications: the page keeps the newest 100, and each number once after a reload."""
    bob = name("bob")
    log_in_over_http(servers[0], bob)
    for n in range(150):
        notify(bob, f"n{n}")
    page = open_page(servers[0].url, bob)
    page_items(page).to_have_count(100)
    expect(page.locator("#notifications li").first).to_have_text("tester: n149")
    page.click("#show-older")
    page_items(page).to_have_count(150)
    expect(page.locator("#notifications li").last).to_have_text("tester: n0")
    notify(bob, "live")
    expect(page.locator("#notifications li").first).to_have_text("tester: live")
    page.reload()
    page_items(page).to_have_count(100)
    ids = page.eval_on_selector_all("#notifications li", "items => items.map((li) => li.dataset.id)")
    assert len(set(ids)) == 100


def test_two_users_on_two_processes_in_the_browser(servers, open_page, name):
    alice, bob = name("alice"), name("bob")
    bob_page, alice_page = open_page(servers[1].url, bob), open_page(servers[0].url, alice)
    expect(bob_page.locator("#status")).to_have_text(f"connected as {bob}")
    page_send(alice_page, bob, "<b>hi</b> bob")
    expect(alice_page.locator("#send-result")).to_have_text("sent")
    page_items(bob_page).to_have_text([f"{alice}: <b>hi</b> bob"])
    expect(bob_page.locator("#unread")).to_have_text("1")

    bob_page.click("#mark-read")
    expect(bob_page.locator("#unread")).to_have_text("0")
    bob_page.reload()  # the read mark is in Redis, not in the page
    page_items(bob_page).to_have_count(1)
    expect(bob_page.locator("#notifications li.unread")).to_have_count(0)

    bob_page.evaluate("socket.disconnect()")  # bob goes away; alice writes meanwhile
    page_send(alice_page, bob, "while you were away")
    expect(alice_page.locator("#send-result")).to_have_text("sent")
    bob_page.evaluate("socket.connect()")  # auth sends the last id it holds: the server replays what follows
    page_items(bob_page).to_have_text([f"{alice}: while you were away", f"{alice}: <b>hi</b> bob"])
    expect(bob_page.locator("#unread")).to_have_text("1")

    page_send(alice_page, "nobody-ever", "anyone there?")
    expect(alice_page.locator("#send-result")).to_have_text(
        re.compile(f"not sent: {NOBODY}"))


def test_a_page_behind_nginx_gets_notifications_from_both_processes_and_the_publisher(servers, nginx, open_page,
                                                                                      connect, publish, name):
    alice, bob = name("alice"), name("bob")
    page = open_page(nginx.url, bob)  # polling first, then the WebSocket upgrade, both through nginx
    expect(page.locator("#status")).to_have_text(f"connected as {bob}")
    for server in servers:
        call_send(connect(server, alice), bob, f"from {server.port}")
    assert publish("--to", bob, "--sender", "cron", "from publish.py").returncode == 0
    page_items(page).to_have_text(
        ["cron: from publish.py", f"{alice}: from {servers[1].port}", f"{alice}: from {servers[0].port}"])
    expect(page.locator("#unread")).to_have_text("3")


def test_the_chaos_rig_in_miniature_loses_nothing_and_shows_nothing_twice():
    """`make chaos` at its smallest (kill -9, Redis restarted, forged publishes): every count exact."""
    result = subprocess.run([sys.executable, "-m", "tutorial.chaos", "--smoke", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.splitlines()[-1])
    assert [row["fault"] for row in rows] == ["kill -9 a server", "restart Redis (AOF)", "forged PUBLISH"]
    for row in rows:
        assert row["sent"] > 0 and row["sent"] == row["acknowledged"] + row["refused"]
        assert (row["refused"], row["unresolved"], row["lost"], row["twice"], row["forged"]) == (0, 0, 0, 0, 0), row
