"""07 · Errors: error handlers per namespace; the client gets an incident id, the log the rest (notes: 错误处理)."""
import io
import os
import re
import secrets

from flask import Flask, current_app, render_template, request
from flask_socketio import ConnectionRefusedError, SocketIO, emit
from socketio.packet import CONNECT_ERROR, Packet

socketio = SocketIO()

MAX_PACKET = 64_000  # bytes: a bigger packet closes its connection (Engine.IO's default: 1 MB)
MAX_ATTACHMENTS = 10  # binary attachments a packet may announce

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")  # ASCII only: no look-alikes from other scripts ("bоb")
RESERVED = {"admin", "administrator", "root", "system", "server", "support", "everyone", "nobody"}
MAX_TEXT = 500


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"))
    app.config.from_prefixed_env()
    app.config.update(settings)
    use_secret_key(app)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], serializer=CheckedPacket,
                      max_http_buffer_size=MAX_PACKET)
    guard_the_wire(app)

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode)

    return app


def use_secret_key(app):
    """Sign sessions with FLASK_SECRET_KEY, else with a random key made on the first run and kept in
    the instance folder (never committed): nobody else knows it, and a restart keeps sessions valid."""
    if app.config.get("SECRET_KEY"):
        return
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    try:
        with open(path, "x") as file:  # "x": if two processes start at once, one writes, both read
            file.write(secrets.token_hex(32))
        print(f" * Sessions are signed with a new random key, kept in {path}", flush=True)
    except FileExistsError:
        pass
    with open(path) as file:
        app.config["SECRET_KEY"] = file.read().strip()


class CheckedPacket(Packet):
    """python-socketio's packet, raising ValueError for whatever is malformed, as it does for most things:
    also for JSON nested too deep (RecursionError), placeholders of attachments that do not exist
    (IndexError, TypeError) and more attachments announced than MAX_ATTACHMENTS (all held in memory).
    Its refusal of an unknown namespace gets the ``{message}`` the JavaScript client reads, not a bare string."""

    def encode(self):
        if self.packet_type == CONNECT_ERROR and isinstance(self.data, str):
            self.data = {"message": self.data}
        return super().encode()

    def decode(self, encoded_packet):
        try:
            attachments = super().decode(encoded_packet)
        except RecursionError:
            raise ValueError("JSON nested too deep") from None
        if attachments and attachments > MAX_ATTACHMENTS:
            raise ValueError(f"more than {MAX_ATTACHMENTS} binary attachments announced")
        return attachments

    @classmethod
    def reconstruct_binary(cls, data, attachments):
        try:
            return super().reconstruct_binary(data, attachments)
        except (IndexError, TypeError, RecursionError):
            raise ValueError("a placeholder for an attachment that does not exist") from None


def guard_the_wire(app):
    """Answer malformed traffic below the handlers with one log line, never a traceback (workarounds for
    python-engineio 4.15 and python-socketio 5.18; see README.md): close a connection whose packet the
    decoder refuses, refuse a long-polling POST that is too big or not Engine.IO, and never let an
    error reach the web server, which would log it and (eventlet's) send the traceback to the client."""
    eio = socketio.server.eio
    decode_and_dispatch = eio.handlers["message"]

    def message(eio_sid, data):
        try:
            return decode_and_dispatch(eio_sid, data)
        except ValueError as error:  # python-socketio's (and CheckedPacket's) word for malformed
            refused(f"a malformed packet ({str(error)[:100]!r})")
            eio.sockets[eio_sid].close(wait=False, abort=True)  # eio.disconnect() would wait for the client

    def guarded(environ, start_response):
        problem = polling_problem(environ)
        try:
            if not problem:
                return wsgi_app(environ, start_response)
        except (ConnectionError, StopIteration):
            raise  # how python-engineio ends every WebSocket under Werkzeug and gunicorn
        except Exception as error:
            problem = f"a request that failed below the app ({type(error).__name__})"
        refused(problem)
        start_response("400 BAD REQUEST", [("Content-Type", "text/plain")])
        return [b"Bad Request"]

    eio.on("message", message)
    wsgi_app, app.wsgi_app = app.wsgi_app, guarded


def polling_problem(environ):
    """What is wrong with a long-polling POST, which python-engineio would answer only after the client's
    next poll, or never: too big, or a packet of a type Engine.IO does not have. None if it is fine."""
    if environ["REQUEST_METHOD"] != "POST" or not environ["PATH_INFO"].startswith("/socket.io"):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_PACKET:
        return f"a long-polling POST of {length} bytes"
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    packets = body.split(b"\x1e")
    if len(packets) > 16 or not all(packet[:1] and packet[:1] in b"0123456" for packet in packets):
        return "a long-polling POST that is not Engine.IO packets"
    return None


def refused(what):
    """Log, in one line, that the server refused something a client sent."""
    print(f" * refused {what} from a client", flush=True)


def reject(event, problem):
    """Tell the sender only what was wrong; the returned value answers an acknowledgement."""
    emit("bad_input", {"event": event, "error": problem})
    return {"error": problem}


def forged(event):
    """Whether a client sent an ordinary event called ``event`` ("connect", "disconnect") to run this
    lifecycle handler on an open connection: the real ones run only while it opens or closes."""
    return socketio.server.manager.is_connected(request.sid, request.namespace)


def checked_username(name):
    """The user ``name`` stands for, case-folded (Bob is bob); a reserved name is refused."""
    if not isinstance(name, str) or not USERNAME.fullmatch(name):
        raise ValueError("a user name is 1-20 letters, digits, '-' or '_', starting with a letter or digit")
    if name.lower() in RESERVED:
        raise ValueError(f"{name.lower()!r} is a reserved name")
    return name.lower()


def checked_text(text, name="the message"):
    """``text`` if it is a non-empty string of at most MAX_TEXT characters, else ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{name} is longer than {MAX_TEXT} characters")
    return text


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
    if forged("connect"):
        return reject("connect", "'connect' is sent by Socket.IO itself, not by a client")
    try:
        checked_username(auth.get("name") if isinstance(auth, dict) else None)
    except ValueError as error:
        raise ConnectionRefusedError(f"/chat needs a name: {error}") from None


def report_incident(error, handled_by):
    """Log everything about an unexpected error; answer the client with an incident id, nothing else."""
    if isinstance(error, TypeError) and error.__traceback__.tb_next is None:
        # Flask-SocketIO's own call of the handler failed: the client sent too few or too many
        # arguments. Its mistake, answered like any bad input; not a bug, so no incident.
        return reject(request.event["message"], "wrong number of arguments: see the events table in README.md")
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


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
