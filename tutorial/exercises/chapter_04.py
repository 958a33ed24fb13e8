"""Chapter 04's exercises (04_send/README.md, "Now you try")."""
from datetime import UTC, datetime

from . import acknowledged, exercise, fresh_app


@exercise("A receipt with the server's time")
def receipt_time(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter))
    answer = acknowledged(client, "my event", {"data": "hi"})
    assert isinstance(answer, dict) and "received_at" in answer, (
        f"'my event' was answered {answer!r}: return {{'received_at': <the server's time>}} from its handler")
    try:
        when = datetime.fromisoformat(answer["received_at"])
    except (TypeError, ValueError):
        raise AssertionError(f"'received_at' is {answer['received_at']!r}, not an ISO 8601 time") from None
    assert when.utcoffset() is not None, f"'received_at' {answer['received_at']!r} has no time zone: use UTC"
    assert abs((datetime.now(UTC) - when).total_seconds()) < 60, f"'received_at' {answer['received_at']!r} is not now"


@exercise("Two values in one answer")
def two_values(chapter):
    client = chapter.socketio.test_client(fresh_app(chapter))
    answer = acknowledged(client, "what time")
    assert answer is not None, "'what time' got no answer: add a handler that returns (hours, minutes)"
    now = datetime.now(UTC)
    assert isinstance(answer, list) and len(answer) == 2, (
        f"'what time' was answered {answer!r}: return a tuple, which arrives as two values")
    hours, minutes = answer
    late = (now.hour * 60 + now.minute - hours * 60 - minutes) % (24 * 60) if answer == [*map(int, answer)] else None
    assert late in (0, 1), f"'what time' answered {answer!r}; the time in UTC is ({now.hour}, {now.minute})"
