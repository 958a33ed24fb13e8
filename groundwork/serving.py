"""How chapter 10 runs as a server, out of the lesson's way: the WebSocket compression it declines,
its private Redis, and the limits of each async mode.

``app.py`` calls these; nothing here is about notifications.
"""
import atexit
import os
import signal

from .redis_server import PrivateRedis

# Eventlet's WSGI server serves at most this many connections at once (its default, 1024,
# would leave tab 1,023 on "connecting…"); each idle one costs a green thread, a few KB.
EVENTLET_CONNECTIONS = 10_000


def decline_websocket_compression(wsgi_app):
    """WSGI middleware: every WebSocket handshake reaches the server as if the client offered no compression.

    Browsers always offer permessage-deflate, and the WebSocket servers of every async mode
    (eventlet's, simple-websocket's) accept it with no option to refuse; for notifications of
    a few hundred bytes it costs far more (CPU per message and recipient, ~90 KB of zlib state
    per connection) than it saves. Node's Socket.IO server declines it by default too.
    Set FLASK_WEBSOCKET_COMPRESSION=true to accept it again; see the README, "Compression".
    """
    def without_compression_offer(environ, start_response):
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return wsgi_app(environ, start_response)

    return without_compression_offer


def start_private_redis():
    """No REDIS_URL: run a private redis-server (with a random password) for as long as this process."""
    private = PrivateRedis().start()
    atexit.register(private.remove)
    print(f" * No REDIS_URL: started a private Redis at {private.url}\n"
          f" * Run a second server on it: REDIS_URL={private.url} PORT=5001 python app.py\n"
          f" * Publish to it: REDIS_URL={private.url} python publish.py --to NAME \"hello\"", flush=True)
    return private.url


def run(socketio, app):
    """Serve ``app`` as ``python app.py`` does: HOST and PORT from the environment, 127.0.0.1:5000 by default."""
    # Ctrl-C unwinds through atexit (which stops a private Redis); make a plain `kill` act as Ctrl-C.
    # (Not sys.exit: under eventlet a SystemExit raised in a green thread can leave the server up.)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    options = {"max_size": EVENTLET_CONNECTIONS} if socketio.async_mode == "eventlet" else {}
    socketio.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", 5000)),
                 log_output=True, allow_unsafe_werkzeug=True, **options)
