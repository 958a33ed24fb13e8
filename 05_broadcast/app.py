"""05 · Broadcast: everyone, everyone but me, and messages the server starts (notes: 广播)."""
import os
import threading
import time

from flask import Flask, current_app, render_template, request
from flask_socketio import SocketIO, emit

from groundwork import protect, reject

socketio = SocketIO()

listeners = set()  # sids connected to /: the clock ticks while there is someone to hear it
clock = None  # the background task, while it runs
clock_lock = threading.Lock()  # never held across a wait, so green threads cannot deadlock on it


@socketio.on("connect")
def connect():
    """Count the listener in, and start the clock if this is the first one."""
    global clock
    with clock_lock:
        listeners.add(request.sid)
        if clock is None:
            clock = socketio.start_background_task(tick, current_app.config["TICK_SECONDS"])


@socketio.on("disconnect")
def disconnect(reason):
    """Count the listener out: the clock stops at its next tick when nobody is left."""
    with clock_lock:
        listeners.discard(request.sid)


def tick(seconds):
    """Push the server's clock to every client, every ``seconds``, while anyone listens."""
    global clock
    count = 0
    while True:
        socketio.sleep(seconds)  # never time.sleep: under eventlet it would stop every green thread
        with clock_lock:
            if not listeners:
                clock = None
                return
        count += 1
        socketio.emit("tick", {"count": count, "time": time.strftime("%H:%M:%S")})


@socketio.on("my event")
def my_event(message):
    """Send a message to everyone on /, or with include_self false to everyone but the sender."""
    try:
        if not isinstance(message, dict):
            raise ValueError('send an object like {"text": "hello", "include_self": true}')
        text = checked_text(message.get("text"), "'text'")
        include_self = message.get("include_self", True)
        if not isinstance(include_self, bool):
            raise ValueError("'include_self' must be true or false")
    except ValueError as error:
        return reject("my event", str(error))
    emit("my response", {"text": text}, broadcast=True, include_self=include_self)
    return {"sent": True}  # acknowledged after the broadcast went out: see the tests


def notify():
    """POST /notify: broadcast a notification from a plain HTTP request, no Socket.IO client involved."""
    if not request.is_json:
        return {"error": "send JSON with Content-Type: application/json"}, 415
    if request.origin not in (None, request.host_url.rstrip("/")):
        return {"error": "cross-origin requests are not accepted"}, 403
    try:
        text = checked_text(json_body().get("text"), "'text'")
    except ValueError as error:
        return {"error": str(error)}, 400
    # No Socket.IO request here, so no sender: socketio.emit() goes to every client.
    socketio.emit("notification", {"text": text})
    return {"sent": text}


MAX_TEXT = 500


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


def json_body():
    """The request's JSON object, else ValueError."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # JSON nested thousands deep: Python's json module gives up (upstream, see README.md)
        data = None
    if not isinstance(data, dict):
        raise ValueError('send a JSON object like {"text": "hello"}')
    return data


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"), TICK_SECONDS=1)
    app.config.from_prefixed_env()
    app.config.update(settings)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"])
    protect(app, socketio)  # below the lesson: 01_setup/README.md, "What protect() does"

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode)

    app.add_url_rule("/notify", view_func=notify, methods=["POST"])
    return app


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
