"""Chapter 10 beyond one Redis (issue 22): no eviction, failover, pages that say what they lost, honest answers."""
import itertools
import os
import re
import secrets
import signal
import threading
import time

import notification_store
import pytest
import redis
import socketio
from playwright.sync_api import expect

from groundwork.redis_server import HighlyAvailableRedis
from tutorial import ASYNC_MODES
from tutorial.testing import next_event, received_until, until

RESET = "the notification store was reset: older notifications are gone"


def key():
    """A fresh idempotency key, as the page makes one per message."""
    return secrets.token_hex(8)


def send(client, to, text, send_key=None):
    """Send a notification from an in-process test client; its acknowledgement."""
    return client.emit("send_notification", {"to": to, "text": text, "key": send_key or key()}, callback=True)


def log_in_to(chapter, app, user):
    """A test client of ``user`` connected to ``app`` (an app of the test's own, on its own Redis)."""
    http = app.test_client()
    assert http.post("/login", data={"username": user}).status_code == 302
    return chapter.socketio.test_client(app, flask_test_client=http)


def page_send(page, to, text):
    """Send from the page's form."""
    page.fill("#to", to)
    page.fill("#text", text)
    page.click("#send button")


# Item 1: an evicting Redis.

def test_an_evicting_redis_is_refused_at_start_and_when_it_changes(chapter, make_app, durable_redis, name):
    r = redis.Redis.from_url(durable_redis.url)
    r.config_set("maxmemory-policy", "allkeys-lru")
    with pytest.raises(notification_store.Evicting, match=r"maxmemory-policy allkeys-lru\): set maxmemory-policy "
                                                          "noeviction"):
        make_app(durable_redis.url, listening=False)
    r.config_set("maxmemory-policy", "noeviction")
    app = make_app(durable_redis.url)
    alice, bob = name("alice"), name("bob")
    tab, sender = log_in_to(chapter, app, bob), log_in_to(chapter, app, alice)
    assert "id" in send(sender, bob, "while safe")
    tab.get_received()

    r.config_set("maxmemory-policy", "volatile-lru")  # an operator changes it under the running servers
    until(app.extensions["evicting"].is_set, timeout=chapter.EVICTION_CHECK + 5, what="the servers noticing")
    assert {"available": False, "error": chapter.EVICTING} in [
        e["args"][0] for e in received_until(tab, "status", timeout=5) if e["name"] == "status"]
    assert send(sender, bob, "while evicting") == {"error": chapter.EVICTING, "retry": True}
    assert r.xlen(f"notifications:{bob}") == 1

    r.config_set("maxmemory-policy", "noeviction")
    until(lambda: not app.extensions["evicting"].is_set(), timeout=chapter.EVICTION_CHECK + 5,
          what="the servers noticing")
    assert "id" in send(sender, bob, "safe again")
    assert r.xlen(f"notifications:{bob}") == 2
    r.close()


# Item 2: a failover with a lagging replica.

@pytest.fixture
def ha_redis():
    """A primary, a replica and three sentinels of this test's own."""
    ha = HighlyAvailableRedis()
    try:
        yield ha.start()
    finally:
        ha.remove()


def send_until_definite(sio, to, text, attempts):
    """Send as the page does, the same key until the answer is definite; note each attempt in ``attempts``."""
    message = {"to": to, "text": text, "key": key()}
    for attempt in itertools.count():
        attempts.append((text, attempt))
        if attempt:
            time.sleep(0.1)  # not synchronisation: the pause between two attempts, as the page's
        try:
            answer = sio.call("send_notification", message, timeout=5)
        except socketio.exceptions.TimeoutError:
            continue
        if not answer.get("retry"):
            return answer


@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_a_failover_with_a_lagging_replica_loses_no_acknowledged_notification(ha_redis, start_servers, connect, name,
                                                                              async_mode):
    """The primary dies while its replica lags: every acknowledged notification is on the promoted one."""
    alice, bob = name("alice"), name("bob")
    servers = start_servers(2, async_mode, ha_redis.url)
    tab, sender = connect(servers[1], bob), connect(servers[0], alice)
    answers, attempts, texts = [], [], [f"n{n}" for n in range(50)]  # under the sender's limit of 60 per 10 s
    burst = threading.Thread(target=lambda: answers.extend(send_until_definite(sender, bob, text, attempts)
                                                           for text in texts))
    burst.start()
    try:
        until(lambda: len(answers) >= 10, what="10 notifications acknowledged")
        with ha_redis.replication_stalled():
            stalled = len(attempts)
            until(lambda: len(attempts) >= stalled + 3, what="sends stored on the primary alone")
            ha_redis.primary.process.kill()
            ha_redis.primary.process.wait()
        until(lambda: ha_redis.current_primary() is ha_redis.replica, timeout=30, what="the replica promoted")
        ha_redis.rejoin(ha_redis.primary)  # the new primary's replica: acknowledgements can be confirmed again
    finally:
        burst.join(60)
    assert [("id" in answer) for answer in answers] == [True] * 50  # every send definite, every one acknowledged
    with redis.Redis.from_url(ha_redis.replica.url, decode_responses=True) as promoted:
        assert [fields["text"] for _, fields in promoted.xrange(f"notifications:{bob}")] == texts  # once each
    assert any(attempt for _, attempt in attempts)  # the stall reached sends, settled later with their keys
    replayed = [n["text"] for n in tab.call("sync", {"last_id": "0-0"}, timeout=5)["notifications"]]
    assert replayed == texts


# Item 4 and issue 24, item 4: honest answers.

def test_a_user_unknown_after_a_reset_is_not_said_never_to_have_logged_in(durable_redis, name):
    carol = name("carol")
    r = notification_store.connect(durable_redis.url)
    notification_store.register(r, carol)
    durable_redis.forget()  # restarted empty: carol logged in before, and has no tab open to register her again
    durable_redis.start()
    notification_store.register(r, name("dave"))
    r.set("users:since", int(r.time()[0]) - notification_store.REGISTERING)  # the registering seconds are over
    with pytest.raises(notification_store.UnknownRecipient) as refused:
        notification_store.store(r, carol, "alice", "hi", key())
    assert re.fullmatch(rf"nobody called '{carol}' has logged in since this notification store started "
                        r"\(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)", str(refused.value))
    r.close()


def test_a_key_reused_for_another_message_is_refused(log_in, name, redis_url):
    alice, bob, carol = name("alice"), name("bob"), name("carol")
    log_in(bob).disconnect()
    log_in(carol).disconnect()
    sender = log_in(alice)
    once = key()
    first = send(sender, bob, "one", once)
    assert send(sender, bob, "one", once) == first  # the same message again: the same id, one copy
    for to, text in [(carol, "one"), (bob, "two")]:
        assert send(sender, to, text, once) == {
            "error": "this key was used for another message: make a new key for each message"}
    with redis.Redis.from_url(redis_url) as r:
        assert (r.xlen(f"notifications:{bob}"), r.xlen(f"notifications:{carol}")) == (1, 0)


def test_older_than_nothing_is_bad_input_not_an_outage(log_in, name):
    tab = log_in(name("bob"))
    tab.get_received()
    answer = tab.emit("older", {"before": "0-0"}, callback=True)
    assert answer == {"error": "'before' must be newer than '0-0': nothing is older"}
    assert tab.get_received()[0]["args"][0] == {"event": "older", "error": answer["error"]}


# Item 5: a head the store never gave.

def test_a_page_asking_after_an_id_the_store_never_gave_starts_again(log_in, name, notify):
    bob = name("bob")
    log_in(bob).disconnect()
    real = notify(bob, "real")
    tab = log_in(bob, auth={"last_id": "99999999999999-0"})
    replay = next(e["args"][0] for e in tab.get_received() if e["name"] == "replay")
    assert (replay["after"], replay["unknown"], [n["id"] for n in replay["notifications"]]) == (None, True, [real])
    trimmed = tab.emit("sync", {"last_id": "1-0"}, callback=True)  # older than everything kept: trimmed, not unknown
    assert (trimmed["after"], trimmed["unknown"], [n["id"] for n in trimmed["notifications"]]) == ("1-0", False, [real])


def test_an_id_forged_on_the_message_queue_does_not_stick(servers, open_page, name, notify, redis_url):
    bob = name("bob")
    page = open_page(servers[0].url, bob)
    expect(page.locator("#status")).to_have_text(f"connected as {bob}")
    first = notify(bob, "one")
    expect(page.locator("#notifications li")).to_have_text(["tester: one"])
    queue = socketio.RedisManager(redis_url, channel=notification_store.SOCKETIO_CHANNEL, write_only=True)
    queue.emit("notification", {"id": "99999999999999-0", "prev": first, "n": 2, "to": bob, "from": "admin",
                                "text": "forged", "at": 0}, to=notification_store.private_room(bob))
    expect(page.locator("#notifications li").first).to_have_text("admin: forged")
    notify(bob, "two")  # newer than anything real, older than the forged id: the page cannot show it yet
    page.evaluate("socket.disconnect(); socket.connect()")
    expect(page.locator("#notifications li:not(.gone)")).to_have_text(["tester: two", "tester: one"])
    notify(bob, "three")
    expect(page.locator("#notifications li:not(.gone)")).to_have_text(["tester: three", "tester: two", "tester: one"])
    expect(page.locator("#notifications li.gone")).to_have_text(["admin: forged"])


# Item 3: history trimmed while a page was away.

def test_a_page_says_how_many_notifications_were_trimmed_while_it_was_away(servers, open_page, name, notify,
                                                                          redis_url):
    bob = name("bob")
    page = open_page(servers[0].url, bob)
    notify(bob, "before")
    expect(page.locator("#notifications li")).to_have_text(["tester: before"])
    page.evaluate("socket.disconnect()")
    r = notification_store.connect(redis_url)
    for n in range(notification_store.KEEP + 250):
        notification_store.store(r, bob, "tester", f"n{n}", key(), limit=None)
    [(_, oldest)] = r.xrange(f"notifications:{bob}", count=1)
    r.close()
    trimmed = int(oldest["n"]) - 2  # kept from n, and the page holds notification 1
    assert trimmed > 0
    page.evaluate("socket.connect()")
    expect(page.locator("#notices li")).to_have_text([f"{trimmed} older notifications are no longer kept"])
    expect(page.locator("#notifications li").first).to_have_text(f"tester: n{notification_store.KEEP + 249}")


# Item 6: a stall.

@pytest.mark.parametrize("async_mode", ASYNC_MODES)
def test_a_page_says_it_is_waiting_while_the_server_stalls(start_servers, redis_url, open_page, connect, name,
                                                           async_mode):
    alice, bob = name("alice"), name("bob")
    [server] = start_servers(1, async_mode, redis_url)
    tab = connect(server, bob)
    page = open_page(server.url, alice)
    expect(page.locator("#status")).to_have_text(f"connected as {alice}")
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        page_send(page, bob, "during the stall")
        expect(page.locator("#status")).to_have_text("waiting for the server…", timeout=10000)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    expect(page.locator("#send-result")).to_have_text("sent", timeout=15000)
    expect(page.locator("#status")).to_have_text(f"connected as {alice}")
    assert next_event(tab, "notification")["text"] == "during the stall"
