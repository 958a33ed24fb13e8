"""What every chapter's server needs below its handlers, and no chapter teaches: malformed traffic
answered with one log line and a closed connection, never a traceback, a wedged connection or a
worker held forever. Each chapter's ``create_app`` uses it in two lines::

    socketio.init_app(app, ..., serializer=CheckedPacket, max_http_buffer_size=MAX_PACKET)
    guard_the_wire(app, socketio)

Workarounds for python-engineio 4.15 and python-socketio 5.18, each proved by ``tests/test_security.py``
(CONTRIBUTING.md has the table). A package of its own, installed with the tutorial, rather than a copy
in every chapter: ninety lines of packet handling would bury each lesson, and they are the same in all ten.
"""
import io

from socketio.packet import CONNECT_ERROR, Packet

MAX_PACKET = 64_000  # bytes: a bigger packet closes its connection (Engine.IO's default: 1 MB)
MAX_ATTACHMENTS = 10  # binary attachments a packet may announce


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


def guard_the_wire(app, socketio):
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

