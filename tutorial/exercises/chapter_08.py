"""Chapter 08's exercises (08_namespaces/README.md, "Now you try")."""
from flask_socketio import Namespace

from . import acknowledged, events, exercise, fresh_app


@exercise("An /echo namespace, as a class")
def echo_class(chapter):
    app = fresh_app(chapter)
    handler = chapter.socketio.server.namespace_handlers.get("/echo")
    assert handler is not None, "there is no class-based namespace on /echo: register one with socketio.on_namespace()"
    assert isinstance(handler, Namespace), f"/echo is handled by {handler!r}, not a Namespace class"
    client = chapter.socketio.test_client(app, namespace="/echo")
    answer = acknowledged(client, "echo", {"text": "hi"}, namespace="/echo")
    assert answer == {"text": "hi"}, f"'echo' with {{'text': 'hi'}} on /echo was answered {answer!r}, not the same"
    answer = acknowledged(client, "reverse", "abc", namespace="/echo")
    assert answer == "cba", f"'reverse' with 'abc' on /echo was answered {answer!r}, not 'cba'"


@exercise("A welcome from the class")
def welcome(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter), namespace="/echo")
    assert client.is_connected("/echo"), "a connection to /echo was refused"
    got = events(client, "welcome", "/echo")
    assert got, "a connection to /echo got no 'welcome' event: emit it from the class's on_connect"
    assert got[0] == {"namespace": "/echo"}, f"the welcome was {got[0]!r}, not {{'namespace': '/echo'}}"
