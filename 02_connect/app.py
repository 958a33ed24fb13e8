"""02 · Connect: connect and disconnect handlers, auth, refusing a connection (notes: 连接事件)."""
import os

import flask_socketio
from flask import Flask, render_template, request
from flask_socketio import ConnectionRefusedError, SocketIO, emit

from groundwork import protect

socketio = SocketIO()

MAX_NAME = 40
names = {}  # sid -> name of every client connected to /test, in this server process only


@socketio.on("connect", namespace="/test")
def connect(auth):
    """Let a client into /test only with a valid name in ``auth``: the first chance to authenticate."""
    if not isinstance(auth, dict) or "name" not in auth:
        return False  # refused; the client's connect_error says only "Connection rejected by server"
    try:
        name = names[request.sid] = checked_name(auth["name"])
    except ValueError as error:
        # Refused too, but the message (and the optional data) reach the client's connect_error.
        raise ConnectionRefusedError(str(error), {"field": "name", "max_length": MAX_NAME}) from None
    print(f"{name!r} connected to /test as {request.sid}")
    emit("my response", {"data": "Connected", "name": name, "sid": request.sid})
    tell_everyone({"joined": name})


@socketio.on("disconnect", namespace="/test")
def disconnect(reason):
    """Forget a client that left /test, say why it left, and tell the others who is still here."""
    name = names.pop(request.sid, None)
    print(f"{name!r} disconnected from /test ({request.sid}): {reason}")
    tell_everyone({"left": name, "reason": reason}, include_self=False)


@socketio.on("disconnect me", namespace="/test")
def disconnect_me():
    """Disconnect the sender from the server side, as a server would a banned user."""
    flask_socketio.disconnect()  # the client sees reason "io server disconnect" and does not reconnect by itself


def tell_everyone(change, include_self=True):
    """Push the number and names of the clients on /test, and what just changed, to all of them."""
    emit("clients", {"count": len(names), "names": sorted(names.values()), **change},
         broadcast=True, include_self=include_self)


def checked_name(name):
    """``name`` without surrounding spaces, if it is a short printable non-empty string, else ValueError."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("the name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise ValueError(f"the name is longer than {MAX_NAME} characters")
    if not name.isprintable():
        raise ValueError("the name may not contain control characters")  # they would garble the server log
    return name.strip()


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"))
    app.config.from_prefixed_env()
    app.config.update(settings)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"])
    protect(app, socketio)  # below the lesson: 01_setup/README.md, "What protect() does"

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode)

    return app


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
