"""``make check CHAPTER=06``: a chapter's "Now you try" exercises, checked against your ``app.py``.

Each chapter's README ends with two or three exercises: a small change to its own app that
exercises its idea. Their checks are here, one module a chapter (``chapter_06.py``): a check is
a function that loads your ``app.py`` afresh, drives it in-process with Flask-SocketIO's test
client, and fails with a sentence that says what is still missing. ``check(folder)`` runs a
chapter's checks and answers in plain words, per exercise; no traceback for a missing piece.

The reference solutions are patches in ``solutions/NN_name/`` at the repository's root, kept out
of the learner's way; ``tests/test_exercises.py`` proves every exercise both ways: the chapter as
shipped fails its check, the chapter with the solution applied passes it.
"""
import contextlib
import importlib
import io
from dataclasses import dataclass

from socketio.packet import CONNECT_ERROR

from ..testing import load_chapter


class Missing(AssertionError):
    """What an exercise still lacks, in a sentence for the learner."""


@dataclass(frozen=True)
class Exercise:
    number: int
    title: str
    check: object  # check(chapter): raises Missing (or AssertionError) until the exercise is done

    def run(self, folder):
        """None if ``folder``'s app.py does the exercise, else what is missing (a sentence)."""
        try:
            # The app's own prints and logs are not the answer.
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                self.check(load_chapter(folder))
        except AssertionError as missing:
            return str(missing).split("\nassert ")[0] or "the check failed without saying why"
        except SyntaxError as error:
            return f"app.py does not load: {error.msg} (line {error.lineno})"
        except Exception as error:  # the learner's code raised: say where to look, not a traceback
            return f"your app raised {type(error).__name__}: {error}"
        return None


def exercise(title):
    """Register the decorated check as the chapter's next exercise, titled as in its README."""
    def register(check):
        module = importlib.import_module(check.__module__)
        exercises = module.__dict__.setdefault("EXERCISES", [])
        exercises.append(Exercise(len(exercises) + 1, title, check))
        return check
    return register


def exercises_of(folder):
    """The exercises of the chapter in ``folder`` (e.g. ``06_rooms``), in their README's order."""
    return importlib.import_module(f"{__name__}.chapter_{folder.name[:2]}").EXERCISES


def check(folder, only=None):
    """Check the exercises of the chapter in ``folder`` (every one, or number ``only``): the report as lines of
    text, and whether all of them are done."""
    lines, done = [], 0
    results = [(exercise, exercise.run(folder)) for exercise in exercises_of(folder)
               if only in (None, exercise.number)]
    for exercise, missing in results:
        done += missing is None
        lines.append(f"  {'done' if missing is None else 'not yet':7}  {exercise.number}. {exercise.title}")
        if missing is not None:
            lines.append(f"{'':13}still missing: {missing}")
    header = f"Chapter {folder.name}: {done} of {len(results)} exercises done (README.md, \"Now you try\")"
    return [header, *lines], done == len(results)


# What checks share: a fresh app, clients that are let in, and what a refused connection was told.

def fresh_app(chapter, **settings):
    """The chapter's app as the tests make it: in this process, threading mode, a test key."""
    return chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="exercise", **settings)


def acknowledged(client, event, *args, namespace=None):
    """What the server's handler answered to ``event`` (its acknowledgement), None if it answered nothing."""
    return client.emit(event, *args, namespace=namespace, callback=True)


def events(client, name, namespace=None):
    """The first arguments of every ``name`` event the client received since last asked (others are dropped)."""
    return [event["args"][0] if event["args"] and event["name"] not in ("message", "json") else event["args"]
            for event in client.get_received(namespace) if event["name"] == name]


def refusal(chapter, app, namespace="/", auth=None):
    """The ``connect_error`` data a connection to ``namespace`` got (None if it was let in)."""
    server, refused = chapter.socketio.server, []

    class Listening(server.packet_class):  # the test client keeps no refusal's message: note it as it is made
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if self.packet_type == CONNECT_ERROR:
                refused.append(self.data)

    server.packet_class = Listening
    try:
        client = chapter.socketio.test_client(app, namespace=namespace, auth=auth)
    finally:
        server.packet_class = Listening.__base__
    if client.is_connected(namespace):
        return None
    return refused[0] if refused else {"message": "Connection rejected by server"}
