"""Chapter 10: notifications through Redis reach the right user's tabs in any process, and none is lost."""
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import redis
import requests
import socketio
from playwright.sync_api import expect

import notification_store
from tutorial import ASYNC_MODES
from tutorial.servers import free_port

LONG = "x" * 501
UNAVAILABLE = "notifications unavailable: cannot reach Redis"


def notifications(received):
    """The notifications among a test client's received events."""
    return [event["args"][0] for event in received if event["name"] == "notification"]


def wait_for(client, event, timeout=5):
    """Everything an in-process test client received, polled until it includes ``event``."""
    received, deadline = [], time.monotonic() + timeout
    while not any(e["name"] == event for e in received):
        assert time.monotonic() < deadline, f"no {event!r} within {timeout}s: {received}"
        received += client.get_received()
        time.sleep(0.01)  # not synchronisation: the pause between two polls
    return received


def next_event(sio, event, timeout=10):
    """The payload of the next ``event`` a live client receives, skipping the others."""
    deadline = time.monotonic() + timeout
    while True:
        name, *args = sio.receive(timeout=max(deadline - time.monotonic(), 0.01))
        if name == event:
            return args[0] if args else None


def texts(items):
    return [n["text"] for n in items]


# In-process: the login, the validation, the stored notifications.

def test_the_page_asks_for_a_name_then_remembers_it(app, name):
    http = app.test_client()
    assert 'id="login"' in http.get("/").get_data(as_text=True)
    user = name("ann")
    assert http.post("/login", data={"username": user}).status_code == 302
    page = http.get("/").get_data(as_text=True)
    assert f'<b id="user">{user}</b>' in page and 'id="login"' not in page
    http.post("/logout")
    assert 'id="login"' in http.get("/").get_data(as_text=True)


@pytest.mark.parametrize("bad", ["", "two words", "x" * 33, "<script>", "a:b"])
def test_login_refuses_a_bad_name(app, bad):
    http = app.test_client()
    response = http.post("/login", data={"username": bad})
    assert response.status_code == 400
    assert "a name is 1 to 32 letters" in response.get_data(as_text=True)
    assert 'id="login"' in http.get("/").get_data(as_text=True)


@pytest.mark.parametrize("auth", [None, {"user": "bob"}, {"last_id": 0}])
def test_a_connection_without_login_is_refused(chapter, app, auth):
    assert not chapter.socketio.test_client(app, auth=auth).is_connected()


def test_a_notification_reaches_every_tab_of_its_recipient_and_nobody_else(log_in, name):
    alice, bob, carol = name("alice"), name("bob"), name("carol")
    sender, tabs, other = log_in(alice), [log_in(bob), log_in(bob)], log_in(carol)
    answer = sender.emit("send_notification", {"to": bob, "text": "hi"}, callback=True)
    assert answer == {"id": 1}
    for tab in tabs:
        assert notifications(wait_for(tab, "notification")) == [
            {"id": 1, "to": bob, "from": alice, "text": "hi", "at": pytest.approx(time.time(), abs=5)}]
    sender.emit("send_notification", {"to": carol, "text": "marker"}, callback=True)
    assert texts(notifications(wait_for(other, "notification"))) == ["marker"]


@pytest.mark.parametrize("payload, error", [
    ("hello", "send an object {to, text}"),
    (["bob", "hi"], "send an object {to, text}"),
    ({"text": "hi"}, "a name is 1 to 32"),
    ({"to": 5, "text": "hi"}, "a name is 1 to 32"),
    ({"to": "RECIPIENT", "text": ""}, "the message is empty"),
    ({"to": "RECIPIENT", "text": "   "}, "the message is empty"),
    ({"to": "RECIPIENT", "text": 42}, "the message is empty"),
    ({"to": "RECIPIENT", "text": LONG}, "longer than 500 characters"),
    ({"to": "nobody-ever", "text": "hi"}, "nobody called 'nobody-ever' has logged in yet"),
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


@pytest.mark.parametrize("event, payload, error", [
    ("mark_read", {"up_to": "3"}, "'up_to' must be a whole number"),
    ("mark_read", {"up_to": -1}, "'up_to' must be a whole number"),
    ("mark_read", {"up_to": True}, "'up_to' must be a whole number"),
    ("mark_read", None, "'up_to' must be a whole number"),
    ("sync", {"last_id": "7"}, "'last_id' must be a whole number"),
    ("sync", [1], "'last_id' must be a whole number"),
    ("join", {"room": "user:bob"}, "rooms are not chosen by clients"),
])
def test_malformed_events_get_a_clear_error(log_in, name, event, payload, error):
    client = log_in(name("carol"))
    client.get_received()
    answer = client.emit(event, payload, callback=True)
    assert error in answer["error"]
    assert client.get_received()[0]["args"][0] == {"event": event, "error": answer["error"]}
    assert client.is_connected()


def test_someone_elses_room_stays_closed(log_in, name):
    bob, carol = name("bob"), name("carol")
    intruder = log_in(carol)
    intruder.emit("join", {"room": f"user:{bob}"}, callback=True)
    log_in(bob).emit("send_notification", {"to": bob, "text": "for bob only"}, callback=True)
    log_in(bob).emit("send_notification", {"to": carol, "text": "for carol"}, callback=True)
    assert texts(notifications(wait_for(intruder, "notification"))) == ["for carol"]


def test_a_bad_last_id_gets_an_error_and_everything(log_in, name):
    bob = name("bob")
    log_in(bob).emit("send_notification", {"to": bob, "text": "one"}, callback=True)
    received = log_in(bob, auth={"last_id": "one"}).get_received()
    assert {"event": "connect", "error": "'last_id' must be a whole number, 0 or more"} in [
        e["args"][0] for e in received if e["name"] == "bad_input"]
    assert texts(notifications(received)) == ["one"]


def test_read_marks_are_stored_and_never_pass_the_last_notification(log_in, name):
    bob = name("bob")
    tab = log_in(bob)
    for text in ("one", "two"):
        tab.emit("send_notification", {"to": bob, "text": text}, callback=True)
    assert tab.emit("mark_read", {"up_to": 99}, callback=True) == {"read_up_to": 2}
    assert tab.emit("mark_read", {"up_to": 1}, callback=True) == {"read_up_to": 2}
    later = log_in(bob, auth={"last_id": 2}).get_received()
    assert {"name": "read", "namespace": "/", "args": [{"read_up_to": 2}]} in later
    assert notifications(later) == []


def test_garbage_on_the_channel_is_ignored(log_in, name, redis_url):
    bob = name("bob")
    tab = log_in(bob)
    wait_for(tab, "status")
    with redis.Redis.from_url(redis_url) as r:
        for garbage in ("not json", '{"to": "x"}', '{"id": "1", "to": "%s"}' % bob, "[]"):
            r.publish("notifications", garbage)
    tab.emit("send_notification", {"to": bob, "text": "still working"}, callback=True)
    assert texts(notifications(wait_for(tab, "notification"))) == ["still working"]


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
    assert tab.emit("send_notification", {"to": "ann", "text": "hi"}, callback=True) == {
        "error": UNAVAILABLE}
    tab.disconnect()


# The command-line publisher on its own.

@pytest.mark.parametrize("args, url, code, error", [
    (["--to", "nobody-ever", "hi"], None, 1, "nobody called 'nobody-ever' has logged in yet"),
    (["--to", "RECIPIENT", ""], None, 1, "the message is empty"),
    (["--to", "RECIPIENT", LONG], None, 1, "longer than 500 characters"),
    (["--to", "RECIPIENT", "hi"], "redis://127.0.0.1:1/0", 1, "cannot reach Redis at redis://127.0.0.1:1/0"),
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


# Live: two server processes sharing one Redis, real clients over WebSocket.

def test_a_connection_without_login_is_told_why(servers):
    anonymous, refusals = socketio.Client(), []
    anonymous.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anonymous.connect(servers[0].url, auth={"user": "bob"}, transports=["websocket"], wait_timeout=5)
    assert refusals == [{"message": "log in first"}]


def test_a_notifies_b_across_two_processes(servers, connect, name, notify):
    alice, bob, carol = name("alice"), name("bob"), name("carol")
    sender = connect(servers[0], alice)
    tabs = [connect(servers[0], bob), connect(servers[1], bob)]
    other = connect(servers[1], carol)
    sender.call("send_notification", {"to": bob, "text": "hello bob"}, timeout=5)
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
    result = publish("--to", bob, "--sender", "cron", "--via", via, "backup done")
    assert result.returncode == 0, result.stderr
    assert f"notification 1 for {bob} stored" in result.stdout
    assert next_event(tab, "notification") == {"id": 1, "to": bob, "from": "cron", "text": "backup done",
                                                "at": pytest.approx(time.time(), abs=5)}


def test_an_offline_user_gets_everything_on_connect_in_order_once(servers, connect, log_in_over_http, name, notify):
    alice, bob = name("alice"), name("bob")
    sender = connect(servers[0], alice)
    log_in_over_http(servers[1], bob)
    for text in ("one", "two", "three"):
        assert "id" in sender.call("send_notification", {"to": bob, "text": text}, timeout=5)
    tab = connect(servers[1], bob)
    received = [next_event(tab, "notification") for _ in range(3)]
    assert [(n["id"], n["text"]) for n in received] == [(1, "one"), (2, "two"), (3, "three")]
    notify(bob, "marker")
    assert next_event(tab, "notification")["text"] == "marker"  # nothing repeated before it


def test_a_dropped_connection_gets_the_gap_and_no_duplicates(servers, connect, name, notify):
    bob = name("bob")
    tab = connect(servers[0], bob)
    notify(bob, "before")
    assert next_event(tab, "notification")["id"] == 1
    tab.disconnect()
    notify(bob, "missed 1")
    notify(bob, "missed 2")
    again = connect(servers[1], bob, auth={"last_id": 1})
    assert [next_event(again, "notification")["text"] for _ in range(2)] == ["missed 1", "missed 2"]
    notify(bob, "live")
    assert next_event(again, "notification")["text"] == "live"


def test_marking_read_updates_every_tab_in_every_process(servers, connect, name, notify):
    bob = name("bob")
    tabs = [connect(servers[0], bob), connect(servers[1], bob)]
    notify(bob, "read me")
    for tab in tabs:
        assert next_event(tab, "notification")["id"] == 1
    assert tabs[0].call("mark_read", {"up_to": 1}, timeout=5) == {"read_up_to": 1}
    for tab in tabs:
        assert next_event(tab, "read") == {"read_up_to": 1}


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_without_redis_url_the_app_runs_its_own_redis_and_says_how_to_share_it(start_servers, connect, name,
                                                                               async_mode):
    [first] = start_servers(1, async_mode, "")
    shared = re.search(r"REDIS_URL=(\S+) PORT=5001 python app.py", first.output()).group(1)
    [private] = psutil.Process(first.process.pid).children()
    assert private.name() == "redis-server"
    [second] = start_servers(1, async_mode, shared)
    alice, bob = name("alice"), name("bob")
    tab = connect(second, bob)
    connect(first, alice).call("send_notification", {"to": bob, "text": "one Redis, two servers"}, timeout=5)
    assert next_event(tab, "notification")["text"] == "one Redis, two servers"

    first.process.send_signal(signal.SIGTERM)  # to app.py alone: it must stop its Redis itself
    first.process.wait(10)
    private.wait(10)
    assert not psutil.pid_exists(private.pid)


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_redis_restarts_mid_test_nothing_acknowledged_is_lost(durable_redis, start_servers, open_page, connect, name,
                                                             publish, async_mode):
    alice, bob = name("alice"), name("bob")
    [server] = start_servers(1, async_mode, durable_redis.url)
    tab = connect(server, bob)
    page = open_page(server.url, alice)
    page.fill("#to", bob)
    page.fill("#text", "before")
    page.click("#send button")
    expect(page.locator("#send-result")).to_have_text("sent as #1")
    assert next_event(tab, "notification")["text"] == "before"

    durable_redis.stop()
    assert next_event(tab, "status") == {"available": False, "error": UNAVAILABLE}
    expect(page.locator("#status")).to_have_text(UNAVAILABLE)
    page.fill("#text", "lost")
    page.click("#send button")
    expect(page.locator("#send-result")).to_have_text(f"not sent: {UNAVAILABLE}")
    failed = publish("--to", bob, "lost too", url=durable_redis.url)
    assert failed.returncode == 1 and "cannot reach Redis" in failed.stderr
    assert requests.get(server.url, timeout=5).status_code == 200  # pages still load

    durable_redis.start()
    next_event(tab, "resync")  # the server resubscribed by itself
    expect(page.locator("#status")).to_have_text(f"connected as {alice}")
    assert tab.call("sync", {"last_id": 1}, timeout=5) == {"replayed": 0}
    assert publish("--to", bob, "after", url=durable_redis.url).returncode == 0
    assert next_event(tab, "notification") == {"id": 2, "to": bob, "from": "publisher", "text": "after",
                                                "at": pytest.approx(time.time(), abs=5)}
    fresh = connect(server, bob)
    assert [next_event(fresh, "notification")["text"] for _ in range(2)] == ["before", "after"]


# In the browser: two users on two processes, and one behind nginx.

def test_two_users_on_two_processes_in_the_browser(servers, open_page, name):
    alice, bob = name("alice"), name("bob")
    bob_page, alice_page = open_page(servers[1].url, bob), open_page(servers[0].url, alice)
    expect(bob_page.locator("#status")).to_have_text(f"connected as {bob}")
    alice_page.fill("#to", bob)
    alice_page.fill("#text", "<b>hi</b> bob")
    alice_page.click("#send button")
    expect(alice_page.locator("#send-result")).to_have_text("sent as #1")
    expect(bob_page.locator("#notifications li")).to_have_text([f"#1 {alice}: <b>hi</b> bob"])
    expect(bob_page.locator("#unread")).to_have_text("1")

    bob_page.click("#mark-read")
    expect(bob_page.locator("#unread")).to_have_text("0")
    bob_page.reload()  # the read mark is in Redis, not in the page
    expect(bob_page.locator("#notifications li")).to_have_count(1)
    expect(bob_page.locator("#notifications li.unread")).to_have_count(0)

    bob_page.evaluate("socket.disconnect()")  # bob goes away; alice writes meanwhile
    alice_page.fill("#text", "while you were away")
    alice_page.click("#send button")
    expect(alice_page.locator("#send-result")).to_have_text("sent as #2")
    bob_page.evaluate("socket.connect()")  # auth sends last_id 1: the server replays #2 only
    expect(bob_page.locator("#notifications li")).to_have_text(
        [f"#2 {alice}: while you were away", f"#1 {alice}: <b>hi</b> bob"])
    # Everything again, on purpose: the page shows each number once.
    bob_page.evaluate("new Promise((done) => socket.emit('sync', {last_id: 0}, done))")
    expect(bob_page.locator("#notifications li")).to_have_count(2)
    expect(bob_page.locator("#unread")).to_have_text("1")

    alice_page.fill("#to", "nobody-ever")
    alice_page.fill("#text", "anyone there?")
    alice_page.click("#send button")
    expect(alice_page.locator("#send-result")).to_have_text("not sent: nobody called 'nobody-ever' has logged in yet")


def test_a_page_behind_nginx_gets_notifications_from_both_processes_and_the_publisher(servers, nginx, open_page,
                                                                                      connect, publish, name):
    alice, bob = name("alice"), name("bob")
    page = open_page(nginx.url, bob)  # polling first, then the WebSocket upgrade, both through nginx
    expect(page.locator("#status")).to_have_text(f"connected as {bob}")
    for server in servers:
        connect(server, alice).call("send_notification", {"to": bob, "text": f"from {server.port}"}, timeout=5)
    assert publish("--to", bob, "--sender", "cron", "from publish.py").returncode == 0
    expect(page.locator("#notifications li")).to_have_text(
        ["#3 cron: from publish.py", f"#2 {alice}: from {servers[1].port}", f"#1 {alice}: from {servers[0].port}"])
    expect(page.locator("#unread")).to_have_text("3")


def test_a_burst_of_senders_waits_for_a_free_connection_instead_of_failing(redis_url, name):
    """More sends at once than the pool has connections: each waits its turn, none is told Redis is down."""
    r = notification_store.connect(redis_url)
    bob = name("bob")
    notification_store.register(r, bob)
    r.execute_command("CLIENT", "PAUSE", 300, "ALL")  # Redis is slow for a moment: the sends pile up
    with ThreadPoolExecutor(200) as senders:
        sent = list(senders.map(lambda n: notification_store.store_and_publish(r, bob, "tester", f"burst {n}"), range(200)))
    r.close()
    assert sorted(notification["id"] for notification in sent) == list(range(1, 201))
