"""Every chapter, safe by default: what any client may send is answered, and nothing it sends runs what it should not.

Event names come from each app's registered handlers, never from a list, so a new
handler is checked as soon as it exists. Only how a client gets in (auth, a login)
is listed here, per chapter.
"""
import inspect

import pytest
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface

from tutorial import CHAPTERS

LIFECYCLE = ("connect", "disconnect")
# How a client gets in, where a chapter asks: auth per namespace, or a form posted to /login.
AUTH = {"02_connect": {"/test": {"name": "Ana"}}, "06_rooms": {"/": {"username": "ana"}},
        "07_errors": {"/chat": {"name": "Ana"}}}
LOGIN = {"09_testing": {"username": "ana"}, "10_redis_pubsub": {"username": "ana"}}
SETTINGS = {"10_redis_pubsub": {"MESSAGE_QUEUE": False}}  # Flask-SocketIO's test client needs it off
NOISE = {"tick"}  # what the server sends on its own, whatever the clients do (chapter 05's clock)
chapters = pytest.mark.parametrize("chapter", CHAPTERS, indirect=True, ids=[c.name for c in CHAPTERS])


def handlers(socketio):
    """``{namespace: {event: handler}}`` of every event the app handles, decorated or class-based."""
    found = {namespace: {event: inspect.unwrap(handler) for event, handler in events.items()}
             for namespace, events in socketio.server.handlers.items()}
    for namespace, instance in socketio.server.namespace_handlers.items():
        found.setdefault(namespace, {}).update(
            {name[3:]: method for name, method in inspect.getmembers(instance, inspect.ismethod)
             if name.startswith("on_")})
    return found


def wrong_arguments(handler):
    """Arguments ``handler`` must refuse: none at all, one too many, and ``True`` where values belong."""
    parameters = inspect.signature(handler).parameters.values()
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    cases = []
    if positional:
        cases += [(), (True,) * len(positional)]
    if not any(p.kind == p.VAR_POSITIONAL for p in parameters):
        cases.append((True,) * (len(positional) + 1))
    return cases


@pytest.fixture
def enter(chapter):
    """The chapter's app (threading mode, in this process) and a way to connect clients that are let in."""
    app = chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test",
                             **SETTINGS.get(chapter.__file__.split("/")[-2], {}))
    folder = chapter.__file__.split("/")[-2]
    clients = []

    def enter(namespace):
        http = app.test_client()
        if folder in LOGIN:
            assert http.post("/login", data=LOGIN[folder], headers={"Origin": "http://localhost"}).status_code < 400
        client = chapter.socketio.test_client(app, namespace=namespace, flask_test_client=http,
                                               auth=AUTH.get(folder, {}).get(namespace))
        assert client.is_connected(namespace), f"{folder}: refused on {namespace}"
        client.get_received(namespace)
        clients.append(client)
        return client

    enter.app = app
    yield enter
    for client in clients:
        if client.is_connected():
            client.disconnect()


def bad_inputs(client, namespace):
    """The ``bad_input`` payloads a client received, after checking it received nothing else."""
    received = [e for e in client.get_received(namespace) if e["name"] not in NOISE]
    assert all(e["name"] == "bad_input" for e in received), received
    return [e["args"][0] for e in received]


@chapters
def test_lifecycle_events_sent_by_a_client_change_nothing(chapter, enter):
    """A client's ordinary event called "connect" or "disconnect" reaches the lifecycle handler: refused."""
    lifecycle = {ns: [e for e in LIFECYCLE if e in events] for ns, events in handlers(chapter.socketio).items()}
    for namespace, events in lifecycle.items():
        if not events:
            continue
        sender, witness = enter(namespace), enter(namespace)
        sender.get_received(namespace)  # the news that the witness came in
        for event in events:
            for arguments in [(), ("forged",), ({"name": "Bob", "username": "bob"},),
                              (None, {"name": "Bob", "username": "bob"}), (1, 2, 3)]:
                answer = sender.emit(event, *arguments, namespace=namespace, callback=True)
                assert isinstance(answer, dict) and answer.get("error"), (namespace, event, arguments, answer)
                assert bad_inputs(sender, namespace) == [{"event": event, "error": answer["error"]}]
        assert sender.is_connected(namespace)
        assert bad_inputs(witness, namespace) == [], "the others saw something happen"


@chapters
def test_every_event_refuses_missing_extra_and_wrongly_typed_arguments(chapter, enter):
    """Whatever the arguments, a handler answers bad_input (and an {error} acknowledgement), never a traceback."""
    for namespace, events in handlers(chapter.socketio).items():
        sender = None
        for event, handler in events.items():
            if event in LIFECYCLE:
                continue
            sender = sender or enter(namespace)
            for arguments in wrong_arguments(handler):
                answer = sender.emit(event, *arguments, namespace=namespace, callback=True)
                assert isinstance(answer, dict) and answer.get("error"), (namespace, event, arguments, answer)
                assert bad_inputs(sender, namespace) == [{"event": event, "error": answer["error"]}]
                assert sender.is_connected(namespace)


@chapters
def test_a_cookie_signed_with_the_old_public_key_opens_no_session(chapter, monkeypatch):
    """Without FLASK_SECRET_KEY a chapter signs with its own random key, so a cookie forged with "dev" is refused."""
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    app = chapter.create_app(ASYNC_MODE="threading", TESTING=True,
                             **SETTINGS.get(chapter.__file__.split("/")[-2], {}))
    assert app.secret_key not in (None, "", "dev")
    public = Flask("public")
    public.secret_key = "dev"
    forged = SecureCookieSessionInterface().get_signing_serializer(public).dumps({"username": "bob"})
    with app.test_request_context(headers={"Cookie": f"session={forged}"}):
        assert "username" not in session
