"""05 · Broadcast: everyone, everyone but me, and messages the server starts (notes: 广播)."""
import io
import os
import secrets
import threading
import time

from flask import Flask, current_app, render_template, request
from flask_socketio import SocketIO, emit
from socketio.packet import CONNECT_ERROR, Packet

socketio = SocketIO()

MAX_PACKET = 64_000  # bytes: a bigger packet closes its connection (Engine.IO's default: 1 MB)
MAX_ATTACHMENTS = 10  # binary attachments a packet may announce

MAX_TEXT = 500
listeners = set()  # sids connected to /: the clock ticks while there is someone to hear it
clock = None  # the background task, while it runs
clock_lock = threading.Lock()  # never held across a wait, so green threads cannot deadlock on it


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"),
                            TICK_SECONDS=1)
    app.config.from_prefixed_env()
    app.config.update(settings)
    use_secret_key(app)
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], serializer=CheckedPacket,
                      max_http_buffer_size=MAX_PACKET)
    guard_the_wire(app)

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode)

    @app.post("/notify")
    def notify():
        """Broadcast a notification from a plain HTTP request: no Socket.IO client is involved."""
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


@socketio.on_error_default
def wrong_arguments(error):
    """Answer an event sent with too few or too many arguments: calling its handler raised TypeError
    before the handler ran. Any other error is a bug, raised again so that the log shows it."""
    if isinstance(error, TypeError) and error.__traceback__.tb_next is None:
        return reject(request.event["message"], "wrong number of arguments: see the events table in README.md")
    raise error


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


@socketio.on("connect")
def connect():
    """Count the listener in, and start the clock if this is the first one."""
    global clock
    if forged("connect"):
        return reject("connect", "'connect' is sent by Socket.IO itself, not by a client")
    with clock_lock:
        listeners.add(request.sid)
        if clock is None:
            clock = socketio.start_background_task(tick, current_app.config["TICK_SECONDS"])


@socketio.on("disconnect")
def disconnect(reason):
    """Count the listener out: the clock stops at its next tick when nobody is left."""
    if forged("disconnect"):
        return reject("disconnect", "'disconnect' is sent by Socket.IO itself, not by a client")
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

if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
