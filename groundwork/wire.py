"""The wire guard: what a client sends is checked below the handlers, as Node's Socket.IO server checks it.

A handler only ever sees a well-formed event from a connected client, with the arguments it
takes. What is malformed closes its own connection with one log line (as socket.io-parser's
"invalid payload" does), never a traceback, a wedged connection or a worker held forever; an
event sent with too few or too many arguments is answered with ``bad_input``, and the
connection stays. What a real client sends always passes, over WebSocket and over long-polling
alike: bursts (the JavaScript client packs every buffered packet into one POST, limited only in
bytes), binary data (``b<base64>`` in a polling body), reconnections.

The guards, the upstream behaviour each one works around (python-engineio 4.15, python-socketio
5.18), and the tests that prove it, all in ``tests/test_groundwork.py`` against ``tests/guarded/app.py``
in both async modes. This list is the authoritative one (CONTRIBUTING.md links here).

- ``MAX_PACKET`` (``max_http_buffer_size``): Engine.IO accepts packets and POSTs of 1 MB by default.
  Proved by ``test_an_oversized_packet_closes_only_its_connection``.
- ``Payload.max_decode_packets`` raised to the byte limit: python-engineio decodes 16 packets per
  long-polling POST, then answers 200 and drops the whole POST (python-engineio#142), so a burst of
  emits vanishes. ``test_a_burst_of_acknowledged_emits_over_long_polling_is_answered_in_full``;
  TROUBLESHOOTING.md, "Too many packets in payload".
- ``CheckedPacket`` (the server's ``packet_class``): python-socketio raises TypeError, KeyError or
  IndexError (a traceback each) for ``42``, ``42{"a":1}``, ``42[]``, ``4212``, a bare ``4``; RecursionError
  for deep JSON; waits for any number of announced attachments; refuses an unknown namespace with a
  bare string the JavaScript client shows as an empty message. ``test_a_malformed_socket_io_packet_is_a_value_error``,
  ``test_a_malformed_frame_closes_its_connection_with_one_log_line``,
  ``test_an_unknown_namespace_is_refused_with_a_message``.
- ``RESERVED_EVENTS``, refused by ``CheckedPacket``: python-socketio runs the ``connect`` or
  ``disconnect`` handler for a client's ordinary event of that name (socket.io-parser refuses these
  names). ``test_an_event_named_like_socket_ios_own_closes_its_connection_and_runs_no_handler``.
- ``message``, the Engine.IO message handler: python-socketio logs a traceback for each malformed
  packet, swallows text where an announced attachment belongs (a lying attachment count wedges the
  connection), and raises KeyError for packets after a CLOSE in the same POST: one log line, the
  connection closed. ``test_a_malformed_frame_closes_its_connection_with_one_log_line`` ("a lying
  attachment count"), ``test_a_fuzz_of_frames_and_long_polling_bodies_leaves_no_traceback``.
- ``closing_on_malformed``: python-engineio's WebSocket loop decodes frames outside its ``try``, so
  an empty frame or ``b`` with no base64 raises into the web server (a 400 written over the
  WebSocket; under eventlet, a traceback). The same two tests.
- ``checked_trigger_event``: Flask-SocketIO raises TypeError calling a handler with too few or too
  many arguments: answered with ``bad_input`` and an ``{error}`` acknowledgement; a catch-all takes
  whatever comes. ``test_a_wrong_number_of_arguments_is_answered_with_bad_input``,
  ``test_a_catch_all_handler_gets_every_argument_count``.
- ``polling_problem``: a POST with ``Content-Length: abc`` gets a 500 and a traceback, ``-1`` holds a
  worker until the client hangs up, a packet type a client never sends over long-polling (``2``,
  ``5``, ``6``) is answered only after the next poll, a body not UTF-8 or ``b`` with no base64 is a
  traceback. ``test_a_long_polling_post_with_a_bad_length_is_answered_at_once``,
  ``test_a_malformed_long_polling_body_is_refused_with_one_log_line``.
- ``guarded``, the outermost WSGI layer: whatever else fails below the app. eventlet's server runs
  with ``debug=True``, which ``socketio.run`` cannot turn off, and would send the traceback, file
  paths included, to the client. ``test_whatever_else_fails_below_the_app_is_answered_without_internals``.
- ``use_own_identity`` (``groundwork/__init__.py``): Flask's default cookie is ``session``, signed
  with the same salt in every app, and browsers send a host's cookies to all its ports.
  ``test_a_cookie_from_one_chapter_opens_no_session_in_another_even_with_the_same_key``,
  ``test_the_random_key_is_kept_readable_by_its_owner_only``,
  ``test_a_cookie_signed_with_the_old_public_dev_key_opens_nothing``.

Each chapter's check that it stands on all of this: ``tests/test_security.py::test_the_chapter_stands_on_groundwork``.
"""
import base64
import binascii
import functools
import inspect
import io

import engineio.payload
import engineio.socket
from socketio.packet import BINARY_EVENT, CONNECT_ERROR, EVENT, Packet

MAX_PACKET = 64_000  # bytes in one packet or one long-polling POST (Engine.IO's default: 1 MB)
MAX_ATTACHMENTS = 10  # binary attachments a packet may announce, all held in memory until they arrive
# Event names a client may not send: Socket.IO's own (the JavaScript client refuses to emit them and
# socket.io-parser refuses to decode them). python-socketio would run the lifecycle handler instead.
RESERVED_EVENTS = ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")

# python-engineio refuses a POST of more than 16 packets by raising inside the request, answering 200 and
# dropping the whole POST (python-engineio#142): a burst of quick emits over long-polling vanishes. The
# limit that matters is in bytes, which ``max_http_buffer_size`` sets; every packet takes at least one.
engineio.payload.Payload.max_decode_packets = MAX_PACKET


def closing_on_malformed(websocket_handler):
    """python-engineio's WebSocket loop decodes each frame outside its ``try``: a frame that is no Engine.IO
    packet (empty, not a number, ``b`` and not base64) raises out of the request into the web server, which
    answers a WebSocket with an HTTP 400 (eventlet: and a traceback, once the client has gone) and leaves the
    session open until its ping times out. Closed here instead, with one log line."""

    @functools.wraps(websocket_handler)
    def handler(socket, ws):
        try:
            return websocket_handler(socket, ws)
        except (ValueError, IndexError) as error:  # binascii.Error is a ValueError
            refused(f"a malformed Engine.IO packet ({str(error)[:100]!r})")
            socket.close(wait=False, abort=True)
            return []

    return handler


engineio.socket.Socket._websocket_handler = closing_on_malformed(engineio.socket.Socket._websocket_handler)


class CheckedPacket(Packet):
    """python-socketio's packet, raising ValueError for whatever is malformed, as it does for most things:
    also for an event that is not ``[name, *arguments]`` or uses a reserved name, JSON nested too deep
    (RecursionError), placeholders of attachments that do not exist (IndexError, TypeError) and more
    attachments announced than MAX_ATTACHMENTS. Its refusal of an unknown namespace gets the ``{message}``
    the JavaScript client reads, not a bare string."""

    def __init__(self, *args, **fields):
        if fields.get("encoded_packet") in ("", b""):  # python-socketio would not decode it: an EVENT of no data
            raise ValueError("an empty packet")
        super().__init__(*args, **fields)

    def encode(self):
        if self.packet_type == CONNECT_ERROR and isinstance(self.data, str):
            self.data = {"message": self.data}
        return super().encode()

    def decode(self, encoded_packet):
        try:
            attachments = super().decode(encoded_packet)
        except RecursionError:
            raise ValueError("JSON nested too deep") from None
        except (IndexError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a Socket.IO packet ({type(error).__name__})") from None
        if attachments and attachments > MAX_ATTACHMENTS:
            raise ValueError(f"more than {MAX_ATTACHMENTS} binary attachments announced")
        if self.packet_type in (EVENT, BINARY_EVENT) and not (
                isinstance(self.data, list) and self.data and isinstance(self.data[0], str)):
            raise ValueError("an event that is not [name, ...arguments]")
        if self.packet_type in (EVENT, BINARY_EVENT) and self.data[0] in RESERVED_EVENTS:
            raise ValueError(f"an event named {self.data[0]!r}, which only Socket.IO itself sends")
        return attachments

    @classmethod
    def reconstruct_binary(cls, data, attachments):
        try:
            return super().reconstruct_binary(data, attachments)
        except (IndexError, TypeError, KeyError, RecursionError):
            raise ValueError("a placeholder for an attachment that does not exist") from None


def guard(app, socketio):
    """Check every packet, long-polling POST and event's arguments of ``socketio`` below its handlers."""
    server = socketio.server
    server.packet_class = CheckedPacket
    server.eio.max_http_buffer_size = MAX_PACKET
    eio = server.eio
    decode_and_dispatch = eio.handlers["message"]
    trigger_event = server._trigger_event

    def message(eio_sid, data):
        if eio_sid not in server.environ:
            return  # closed already, by a CLOSE packet earlier in the same long-polling POST: nobody to answer
        try:
            if eio_sid in server._binary_packet and not isinstance(data, bytes):
                raise ValueError("text where an announced binary attachment belongs")
            return decode_and_dispatch(eio_sid, data)
        except ValueError as error:  # python-socketio's (and CheckedPacket's) word for malformed
            server._binary_packet.pop(eio_sid, None)
            refused(f"a malformed packet ({str(error)[:100]!r})")
            socket = eio.sockets.get(eio_sid)  # gone if the client closed it meanwhile
            if socket:
                socket.close(wait=False, abort=True)  # eio.disconnect() would wait for the client

    def checked_trigger_event(event, namespace, sid, *args):
        handler = event not in RESERVED_EVENTS and handler_of(server, event, namespace)
        if handler and not takes(handler, args):
            problem = "wrong number of arguments: see the events table in README.md"
            server.emit("bad_input", {"event": event, "error": problem}, to=sid, namespace=namespace)
            return {"error": problem}  # answers the sender's acknowledgement, if it asked for one
        return trigger_event(event, namespace, sid, *args)

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
    server._trigger_event = checked_trigger_event
    wsgi_app, app.wsgi_app = app.wsgi_app, guarded


# Worked out once per handler, not per event: inspect's walks cost 5% of an acknowledged send's CPU time.
unwrapped = functools.lru_cache(maxsize=1024)(inspect.unwrap)
signature = functools.lru_cache(maxsize=1024)(inspect.signature)


def handler_of(server, event, namespace):
    """The function a chapter wrote for ``event`` on ``namespace`` (decorated or a Namespace class's
    ``on_<event>``), None for a catch-all or no handler: python-socketio's own lookup order."""
    handlers = server.handlers.get(namespace, {})
    if event in handlers:
        return unwrapped(handlers[event])  # Flask-SocketIO's wrapper takes (sid, *args) for every handler
    catch_all = "*" in handlers or server.handlers.get("*", {}).keys() & {event, "*"}
    if namespace in server.namespace_handlers and not catch_all:
        return getattr(server.namespace_handlers[namespace], f"on_{event}", None)
    return None


def takes(handler, args):
    """Whether ``handler`` can be called with ``args``, as Flask-SocketIO will call it."""
    try:
        signature(handler).bind(*args)
    except TypeError:
        return False
    return True


def polling_problem(environ):
    """What is wrong with a long-polling POST, which python-engineio would answer only after the client's
    next poll, or never: a length that is no length, too big, not UTF-8, or a packet of a type Engine.IO
    does not have (``b`` is a binary packet in base64). None if it is fine."""
    if environ["REQUEST_METHOD"] != "POST" or not environ["PATH_INFO"].startswith("/socket.io"):
        return None
    length = environ.get("CONTENT_LENGTH") or "0"
    if not length.isdigit():  # "abc", "-1": int() would raise, read(-1) would wait for the client to close
        return f"a long-polling POST with Content-Length {length[:20]!r}"
    if int(length) > MAX_PACKET:
        return f"a long-polling POST of {length} bytes"
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    try:
        packets = body.decode("utf-8").split("\x1e")
    except UnicodeDecodeError:
        return "a long-polling POST that is not UTF-8"
    # What a client sends over long-polling: CLOSE, PONG, MESSAGE, a binary MESSAGE. python-engineio answers
    # any other type by closing the session, and the POST only once the client's next poll has come.
    if not all(packet[:1] and packet[:1] in "134b" for packet in packets):
        return "a long-polling POST that is not Engine.IO packets a client sends"
    try:
        for packet in packets:
            if packet[0] == "b":
                base64.b64decode(packet[1:], validate=True)
    except binascii.Error:  # python-engineio would log a traceback
        return "a long-polling POST with a binary packet that is not base64"
    return None


def refused(what):
    """Log, in one line, that the server refused something a client sent."""
    print(f" * refused {what} from a client", flush=True)
