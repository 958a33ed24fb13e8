"""Chapter 10's exercises (10_redis_pubsub/README.md, "Now you try"): against a private Redis of their own."""
import secrets

from groundwork.redis_server import PrivateRedis

from . import acknowledged, exercise, fresh_app


def logged_in(chapter, app, name):
    """A test client of ``name``, logged in through the page's form as a browser would be."""
    http = app.test_client()
    assert http.post("/login", data={"username": name}).status_code == 302, f"logging in as {name} failed"
    return chapter.socketio.test_client(app, flask_test_client=http)


def notify(client, to, text):
    answer = acknowledged(client, "send_notification", {"to": to, "text": text, "key": secrets.token_hex(8)})
    assert isinstance(answer, dict) and "id" in answer, f"sending {text!r} to {to} was answered {answer!r}"
    return answer["id"]


@exercise("Unread counts per sender")
def unread_counts(chapter):
    redis_server = PrivateRedis().start()
    app = fresh_app(chapter, REDIS_URL=redis_server.url, MESSAGE_QUEUE=False)
    try:
        bob = logged_in(chapter, app, "bob")
        ana, cy = logged_in(chapter, app, "ana"), logged_in(chapter, app, "cy")
        first = notify(ana, "bob", "one")
        notify(ana, "bob", "two")
        notify(cy, "bob", "three")
        counts = acknowledged(bob, "unread")
        assert counts is not None, "'unread' got no answer: add a handler that returns {sender: count}"
        assert counts == {"ana": 2, "cy": 1}, f"Bob's 'unread' answered {counts!r}, not {{'ana': 2, 'cy': 1}}"
        acknowledged(bob, "mark_read", {"up_to": first})
        counts = acknowledged(bob, "unread")
        assert counts == {"ana": 1, "cy": 1}, (
            f"after Bob read Ana's first notification 'unread' answered {counts!r}, not {{'ana': 1, 'cy': 1}}")
    finally:
        app.extensions["stop_forwarding"].set()
        redis_server.remove()


@exercise("What I sent, in all my tabs")
def sent_everywhere(chapter):
    redis_server = PrivateRedis().start()
    app = fresh_app(chapter, REDIS_URL=redis_server.url, MESSAGE_QUEUE=False)
    try:
        logged_in(chapter, app, "bob")
        http = app.test_client()  # one browser, so one session: Ana's two tabs
        assert http.post("/login", data={"username": "ana"}).status_code == 302, "logging in as ana failed"
        tab, other_tab = (chapter.socketio.test_client(app, flask_test_client=http) for _ in range(2))
        other_tab.get_received()
        entry_id = notify(tab, "bob", "lunch?")
        sent = [event["args"][0] for event in other_tab.get_received() if event["name"] == "sent"]
        assert sent, "Ana's other tab got no 'sent' event after she sent a notification from her first tab"
        assert sent[0] == {"id": entry_id, "to": "bob", "text": "lunch?"}, (
            f"Ana's other tab got 'sent' {sent[0]!r}, not {{'id': <its id>, 'to': 'bob', 'text': 'lunch?'}}")
    finally:
        app.extensions["stop_forwarding"].set()
        redis_server.remove()
