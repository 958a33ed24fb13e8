"""Chapter 07's exercises (07_errors/README.md, "Now you try")."""
from . import acknowledged, exercise, fresh_app


@exercise("An error handler of its own for /test")
def own_handler(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter), namespace="/test")
    answer = acknowledged(client, "my error event", {"data": "x"}, namespace="/test")
    assert isinstance(answer, dict) and "id" in answer, f"the failure on /test was answered {answer!r}, not an incident"
    assert answer.get("handler") == "on_error('/test')", (
        f"the failure on /test was handled by {answer.get('handler')!r}: "
        "give /test an error handler of its own, @socketio.on_error('/test')")


@exercise("Say which event failed")
def which_event(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter))
    answer = acknowledged(client, "my error event", {"data": "x"})
    assert isinstance(answer, dict) and "id" in answer, f"the failure on / was answered {answer!r}, not an incident"
    assert answer.get("event") == "my error event", (
        f"the incident answer {answer!r} does not name the event that failed ('event': 'my error event')")
