"""The smallest app that stands on groundwork: what tests/test_groundwork.py sends a client's mistakes to.

One handler of each kind the guard must know: decorated (``pair``, ``describe``), a ``Namespace``
class (``/room``) and a catch-all (``/any``); ``stats`` tells how often the lifecycle handlers ran,
so a test sees that a client's event named ``connect`` ran none.
"""
import os

import flask_socketio
from flask import Flask
from flask_socketio import Namespace, SocketIO

from groundwork import protect

socketio = SocketIO()
lifecycle = {"connect": 0, "disconnect": 0}


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__)
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"))
    app.config.from_prefixed_env()
    app.config.update(settings)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"])
    protect(app, socketio)

    @app.get("/")
    def index():
        return "ok"

    return app


@socketio.on("connect")
def connect():
    """Count the connections the lifecycle handler saw."""
    lifecycle["connect"] += 1


@socketio.on("disconnect")
def disconnect(reason):
    """Count the disconnections the lifecycle handler saw."""
    lifecycle["disconnect"] += 1


@socketio.on("stats")
def stats():
    """How often the lifecycle handlers ran."""
    return lifecycle


@socketio.on("pair")
def pair(first, second):
    """Two arguments, answered as a list: a handler that must get exactly two."""
    return [first, second]


@socketio.on("describe")
def describe(value):
    """What arrived, as Python sees it: bytes must arrive as bytes, alone or inside an object."""
    inside = value if isinstance(value, dict) else {"value": value}
    return {key: type(item).__name__ for key, item in inside.items()}


@socketio.on("bye")
def bye():
    """End this client's connection from the server's side."""
    flask_socketio.disconnect()


class Room(Namespace):
    """A class-based namespace: its handlers are methods, found by the guard as python-socketio finds them."""

    def on_pair(self, first, second):
        """Two arguments, as the decorated ``pair``."""
        return [first, second]


socketio.on_namespace(Room("/room"))


@socketio.on("*", namespace="/any")
def any_event(event, *arguments):
    """A catch-all takes whatever comes: the guard leaves its arguments alone."""
    return [event, len(arguments)]


if __name__ == "__main__":
    socketio.run(create_app(), port=int(os.environ["PORT"]), log_output=True, allow_unsafe_werkzeug=True)
