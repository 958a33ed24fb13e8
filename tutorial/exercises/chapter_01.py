"""Chapter 01's exercises (01_setup/README.md, "Now you try")."""
from . import acknowledged, events, exercise, fresh_app


@exercise("Say hello back")
def hello(chapter):
    app = fresh_app(chapter)
    client = chapter.socketio.test_client(app)
    answer = acknowledged(client, "hello", "Ana")
    assert answer is not None, "emitting 'hello' with \"Ana\" got no answer: add a handler for 'hello' that returns one"
    assert answer == {"text": "Hello, Ana!"}, (
        f"'hello' with \"Ana\" was answered {answer!r}, not {{'text': 'Hello, Ana!'}}")


@exercise("Count the connections")
def count(chapter):
    app = fresh_app(chapter)
    first, second = (chapter.socketio.test_client(app) for _ in range(2))
    counts = [greeting.get("connections") for client in (first, second) for greeting in events(client, "greeting")]
    assert counts != [None, None], "the greeting has no 'connections' yet: add the number of connections so far"
    assert counts == [1, 2], f"two connections were greeted with 'connections' {counts}, not [1, 2]"
