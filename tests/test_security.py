"""Every chapter, safe by default: it stands on groundwork, and its own handlers and routes refuse what they must.

In-process and cheap, once per chapter. What groundwork itself does (malformed packets, long-polling,
events named like Socket.IO's own, argument counts, session identity) is tested once, thoroughly and
live in both async modes, by ``tests/test_groundwork.py``; here each chapter only shows that it is
guarded. Event names come from each app's registered handlers, never from a list, so a new handler is
checked as soon as it exists. Only how a client gets in (auth, a login) is listed here, per chapter.
"""
import inspect

import pytest
from flask import Flask, session

from groundwork import use_own_identity
from groundwork.wire import CheckedPacket
from tutorial import CHAPTERS

# How a client gets in, where a chapter asks: auth per namespace, or a form posted to /login.
AUTH = {"02_connect": {"/test": {"name": "Ana"}}, "06_rooms": {"/": {"username": "ana"}},
        "07_errors": {"/chat": {"name": "Ana"}}}
LOGIN = {"09_testing": {"username": "ana"}, "10_redis_pubsub": {"username": "ana"}}
SETTINGS = {"10_redis_pubsub": {"MESSAGE_QUEUE": False}}  # Flask-SocketIO's test client needs it off
NOISE = {"tick"}  # what the server sends on its own, whatever the clients do (chapter 05's clock)
chapters = pytest.mark.parametrize("chapter", CHAPTERS, indirect=True, ids=[c.name for c in CHAPTERS])


def folder_of(chapter):
    """The chapter's folder name, e.g. "09_testing"."""
    return chapter.__file__.split("/")[-2]


def handlers(socketio):
    """``{namespace: {event: handler}}`` of every event the app handles, decorated or class-based."""
    found = {namespace: {event: inspect.unwrap(handler) for event, handler in events.items()}
             for namespace, events in socketio.server.handlers.items()}
    for namespace, instance in socketio.server.namespace_handlers.items():
        found.setdefault(namespace, {}).update(
            {name[3:]: method for name, method in inspect.getmembers(instance, inspect.ismethod)
             if name.startswith("on_")})
    return found


def positional(handler):
    """How many positional arguments ``handler`` takes, and whether it takes any number more (``*args``)."""
    parameters = inspect.signature(handler).parameters.values()
    count = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
    return count, any(p.kind == p.VAR_POSITIONAL for p in parameters)


@pytest.fixture
def create(chapter):
    """Create the chapter's app in this process (threading mode), with ``settings``; what it runs in the
    background is stopped when the test ends (chapter 10's Redis forwarder)."""
    made = []

    def create(**settings):
        made.append(chapter.create_app(ASYNC_MODE="threading", TESTING=True,
                                       **{**SETTINGS.get(folder_of(chapter), {}), **settings}))
        return made[-1]

    yield create
    for app in made:
        if "stop_forwarding" in app.extensions:
            app.extensions["stop_forwarding"].set()


@pytest.fixture
def enter(chapter, create):
    """The chapter's app and a way to connect clients that are let in."""
    folder = folder_of(chapter)
    app = create(SECRET_KEY="test")
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
def test_the_chapter_stands_on_groundwork(chapter, enter):
    """groundwork.protect() is applied, and outermost: the packet check, the argument count, the long-polling check."""
    server = chapter.socketio.server
    assert server.packet_class is CheckedPacket
    found = handlers(chapter.socketio)
    namespace = next(iter(found))
    client = enter(namespace)
    with pytest.raises(ValueError, match="only Socket.IO itself sends"):
        client.emit("connect", {"username": "bob"}, namespace=namespace)
    counted = [(ns, event, count) for ns, events in found.items() for event, handler in events.items()
               if event not in ("connect", "disconnect") and not positional(handler)[1]
               for count in [positional(handler)[0]]]
    if counted:  # chapter 01 handles no event of its own
        ns, event, count = counted[0]
        sender = client if ns == namespace else enter(ns)
        answer = sender.emit(event, *[None] * (count + 1), namespace=ns, callback=True)
        assert answer == {"error": "wrong number of arguments: see the events table in README.md"}
        assert bad_inputs(sender, ns) == [{"event": event, "error": answer["error"]}]
    # A wrapper the chapter put around its app after protect() would see this first: the guard must stay outermost.
    answer = enter.app.test_client().post("/socket.io/?EIO=4&transport=polling&sid=x", data="40",
                                         environ_overrides={"CONTENT_LENGTH": "abc"})
    assert answer.status_code == 400


@chapters
def test_every_event_refuses_wrongly_typed_arguments(chapter, enter):
    """``True`` where values belong: the handler's own check answers bad_input (and an {error} ack), no traceback."""
    for namespace, events in handlers(chapter.socketio).items():
        sender = None
        for event, handler in events.items():
            count, _ = positional(handler)
            if event in ("connect", "disconnect") or not count:
                continue
            sender = sender or enter(namespace)
            answer = sender.emit(event, *(True,) * count, namespace=namespace, callback=True)
            assert isinstance(answer, dict) and answer.get("error"), (namespace, event, answer)
            # An incident id instead: chapter 07's deliberate failures, its lesson (a bug, not bad input).
            told = [] if "id" in answer else [{"event": event, "error": answer["error"]}]
            assert bad_inputs(sender, namespace) == told
            assert sender.is_connected(namespace)


@chapters
@pytest.mark.parametrize("login_chapter", LOGIN)
def test_a_session_from_another_chapter_opens_nothing_here(chapter, create, monkeypatch, login_chapter):
    """The hub gives every chapter one FLASK_SECRET_KEY, and browsers send every port's cookies to every port:
    a session a chapter with a login signed (as "publisher", the name chapter 10's publish.py signs with)
    opens nothing in another chapter, under its own cookie name or renamed by hand. Without the key, a chapter
    signs with its own random one, never the public "dev" of old tutorials."""
    monkeypatch.setenv("FLASK_SECRET_KEY", "one key for the classroom")
    folder = folder_of(chapter)
    app = create()
    elsewhere = Flask(login_chapter, root_path=str(CHAPTERS[0].parent / login_chapter))
    elsewhere.config["SECRET_KEY"] = "one key for the classroom"
    use_own_identity(elsewhere)
    signed = elsewhere.session_interface.get_signing_serializer(elsewhere).dumps({"username": "publisher"})
    for name in {elsewhere.config["SESSION_COOKIE_NAME"], app.config["SESSION_COOKIE_NAME"]}:
        with app.test_request_context(headers={"Cookie": f"{name}={signed}"}):
            assert ("username" in session) == (folder == login_chapter), name  # it opens its own chapter's
    monkeypatch.delenv("FLASK_SECRET_KEY")
    assert create().secret_key not in (None, "", "dev")


@chapters
def test_posts_from_another_site_are_refused(create):
    """Every POST route refuses a request sent from another site's page, whatever it carries (CSRF)."""
    app = create(SECRET_KEY="test")
    routes = [rule.rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]
    http = app.test_client()
    for route in routes:
        for body in ({"json": {"text": "hi", "username": "ana"}}, {"data": {"text": "hi", "username": "ana"}}):
            response = http.post(route, headers={"Origin": "http://evil.example"}, **body)
            # 415: the route takes no such body at all, before anything else is looked at.
            assert response.status_code in (403, 415), (route, body, response.status_code)


@chapters
def test_other_origins_are_refused(create):
    """Socket.IO accepts only the page's own origin (python-engineio checks it before choosing a transport, so
    long-polling here stands for WebSocket too): another site's page cannot connect with the user's cookies."""
    http = create(SECRET_KEY="test").test_client()
    url = "/socket.io/?EIO=4&transport=polling"
    refused = http.get(url, headers={"Origin": "http://evil.example"})
    assert (refused.status_code, "Not an accepted origin" in refused.text) == (400, True)
    assert http.get(url, headers={"Origin": "http://localhost"}).status_code == 200
