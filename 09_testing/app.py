"""09 · Testing: the notes' test page, working, and how to test and debug it (notes: 测试)."""
import os
import re
import threading

from flask import Flask, current_app, redirect, render_template, request, session, url_for
from flask_socketio import SocketIO, call, emit
from socketio import exceptions

from groundwork import protect, reject

socketio = SocketIO()

asking = set()  # sids the server waits on for an answer: one question each, since every wait holds a thread
asking_lock = threading.Lock()  # two ask_me of one client run at once, on two threads


@socketio.on("connect", namespace="/test")
def connect():
    """Greet the connection by the name in its session cookie (set by ``/login``), as the page expects."""
    respond("Connected")


@socketio.on("my_event", namespace="/test")
def my_event(data):
    """Echo ``data`` back to the sender; acknowledge with the status, or with the error."""
    try:
        text = checked_text(data.get("data") if isinstance(data, dict) else None, "'data'").strip()
    except ValueError as error:
        return reject("my_event", str(error))
    respond(text)
    return {"status": "echoed"}


@socketio.on("ask_me", namespace="/test")
def ask_me(*ignored):
    """Ask the sender a question and wait for its acknowledgement: a server → client call."""
    with asking_lock:
        if request.sid in asking:
            return reject("ask_me", "answer the question you have been asked first")
        asking.add(request.sid)
    try:
        answer = call("question", {"question": "What is your favourite colour?"},
                      timeout=current_app.config["ANSWER_TIMEOUT"])
    except exceptions.TimeoutError:
        respond("No answer in time")
        return
    finally:
        asking.discard(request.sid)
    try:
        answer = checked_text(answer, "the answer").strip()
    except ValueError as error:
        return reject("question", str(error))
    respond(f"You answered: {answer}")


def respond(text):
    """Send ``my_response`` to the sender, with the session's user name (``None`` if not logged in)."""
    emit("my_response", {"data": text, "username": session.get("username")})


def login():
    """POST /login: remember a name in the session cookie; no password, just enough to test a logged-in user."""
    if request.origin not in (None, request.host_url.rstrip("/")):
        return "cross-origin requests are not accepted", 403  # a form on another site logs nobody in
    try:
        session["username"] = checked_username(request.form.get("username", "").strip())
    except ValueError as error:
        return str(error), 400
    return redirect(url_for("index"))


MAX_TEXT = 500
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")  # ASCII only: no look-alikes from other scripts ("bоb")
RESERVED = {"admin", "administrator", "root", "system", "server", "support", "everyone", "nobody"}


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


def checked_username(name):
    """The user ``name`` stands for, case-folded (Bob is bob); a reserved name is refused."""
    if not isinstance(name, str) or not USERNAME.fullmatch(name):
        raise ValueError("a user name is 1-20 letters, digits, '-' or '_', starting with a letter or digit")
    if name.lower() in RESERVED:
        raise ValueError(f"{name.lower()!r} is a reserved name")
    return name.lower()


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"),
                            SOCKETIO_LOGGER=os.environ.get("SOCKETIO_LOGGER") == "1", ANSWER_TIMEOUT=30,
                            SESSION_COOKIE_SAMESITE="Lax")  # another site's requests carry no login
    app.config.from_prefixed_env()
    app.config.update(settings)
    # Every Socket.IO event and Engine.IO packet in the server's output: for debugging, off by default.
    verbose = app.config["SOCKETIO_LOGGER"]
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], logger=verbose, engineio_logger=verbose)
    protect(app, socketio)  # below the lesson: 01_setup/README.md, "What protect() does"
    # The Socket.IO Admin UI (served from static/vendor/admin-ui/) shows this server's sockets, rooms and
    # events live: only with a password (FLASK_ADMIN_PASSWORD), read-only unless FLASK_ADMIN_READ_ONLY=false.
    if app.config.get("ADMIN_PASSWORD"):
        socketio.server.instrument(auth={"username": "admin", "password": app.config["ADMIN_PASSWORD"]},
                                   read_only=app.config.get("ADMIN_READ_ONLY", True))

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode, username=session.get("username"))

    app.add_url_rule("/login", view_func=login, methods=["POST"])
    return app


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
