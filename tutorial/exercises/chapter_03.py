"""Chapter 03's exercises (03_receive/README.md, "Now you try")."""
from . import acknowledged, events, exercise, fresh_app


@exercise("Shout it back")
def shout(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter))
    answer = acknowledged(client, "shout", "hello")
    assert answer is not None, "'shout' with \"hello\" got no answer: add a handler that returns the text in capitals"
    assert answer == "HELLO", f"'shout' with \"hello\" was answered {answer!r}, not 'HELLO'"
    refused = acknowledged(client, "shout", 42)
    assert isinstance(refused, dict) and "error" in refused, (
        f"'shout' with 42 (not a text) was answered {refused!r}: refuse it with reject(), as the other handlers do")
    assert events(client, "bad_input"), "'shout' with 42 sent no 'bad_input' event to the sender"


@exercise("Say how long it is")
def length(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter))
    for value, expected in (("abc", 3), (b"\x00\x01", 2)):
        answer = acknowledged(client, "describe", value)
        assert isinstance(answer, dict), f"'describe' with {value!r} was answered {answer!r}"
        assert "length" in answer, f"the answer to 'describe' with {value!r} has no 'length' yet"
        assert answer["length"] == expected, (
            f"'describe' with {value!r} says length {answer['length']!r}, not {expected}")
    answer = acknowledged(client, "describe", 5)
    assert isinstance(answer, dict) and answer.get("length") is None, (
        f"'describe' with the number 5 says length {answer.get('length')!r}: a number has no length (leave it out)")
