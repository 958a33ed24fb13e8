"""07 · Errors: error handlers per namespace; the client gets an incident id, the log the rest (notes: 错误处理)."""
import os
import re
import secrets

from flask import Flask, current_app, render_template, request
from flask_socketio import ConnectionRefusedError, SocketIO

from groundwork import protect, reject

socketio = SocketIO()


@socketio.on("my event")
def my_event(data):
    """Answer a valid message; refuse an invalid one: an error the client can fix, not an incident."""
    try:
        text = checked_text(data.get("data") if isinstance(data, dict) else None, "'data'")
    except ValueError as error:
        return reject("my event", str(error))
    return {"echo": text}


@socketio.on("my error event")
@socketio.on("my error event", namespace="/chat")
@socketio.on("my error event", namespace="/test")
def my_error_event(data):
    """Fail, as the notes' example does: a stand-in for a bug, on three namespaces."""
    raise RuntimeError("deliberate failure; internals no client may see: /srv/app/secrets.cfg")


@socketio.on("connect", namespace="/chat")
def connect(auth):
    """Refuse /chat to a connection without a name: the client is told why, in words meant for it."""
    try:
        checked_username(auth.get("name") if isinstance(auth, dict) else None)
    except ValueError as error:
        raise ConnectionRefusedError(f"/chat needs a name: {error}") from None


@socketio.on_error()  # the default namespace, '/'
def error_handler(error):
    """Unexpected errors in events on '/'."""
    return report_incident(error, "on_error()")


@socketio.on_error("/chat")
def error_handler_chat(error):
    """Unexpected errors in events on '/chat'."""
    return report_incident(error, "on_error('/chat')")


@socketio.on_error_default  # every namespace without its own handler: here '/test'
def default_error_handler(error):
    """Unexpected errors in events on any other namespace."""
    return report_incident(error, "on_error_default")


def report_incident(error, handled_by):
    """Log everything about an unexpected error; answer the client with an incident id, nothing else."""
    incident = secrets.token_hex(4)
    connecting = request.event["message"] == "connect"
    # A handshake's arguments are the WSGI environ and auth: cookies and credentials stay out of logs.
    args = "the handshake, not logged" if connecting else request.event["args"]
    # request.event is the event being handled: the error handler learns what failed, and with which data.
    current_app.logger.error("incident %s (%s): %r on %s failed, args %.300r", incident, handled_by,
                             request.event["message"], request.namespace, args, exc_info=error)
    if connecting:
        return False  # a connect handler's value decides admission: one that crashed must not let anyone in
    return {"error": f"Something went wrong handling {request.event['message']!r}", "id": incident,
            "handler": handled_by}


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
