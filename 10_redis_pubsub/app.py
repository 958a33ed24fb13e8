"""10 · Redis pub/sub: a notification service for several server processes, nothing lost (notes: redis订阅+websocket)."""
import os

if __name__ == "__main__" and os.environ.get("ASYNC_MODE") == "eventlet":
    # First, before anything opens a socket: redis-py reads its sockets with blocking
    # calls, which would freeze every eventlet green thread, so python-socketio refuses
    # Redis under eventlet unless the socket library is patched to yield. Only when run
    # as the server: a process that imports this module (pytest) must stay unpatched.
    import eventlet
    eventlet.monkey_patch()

import atexit  # noqa: E402 (after the monkey patching, on purpose)
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import redis  # noqa: E402
from flask import Flask, current_app, redirect, render_template, request, session, url_for  # noqa: E402
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room  # noqa: E402

import notification_store as store  # noqa: E402
from private_redis import PrivateRedis  # noqa: E402

socketio = SocketIO()

UNAVAILABLE = "notifications unavailable: cannot reach Redis"
RETRY_DELAYS = (0.1, 0.2, 0.5, 1, 2)  # seconds between attempts to resubscribe; the last one repeats


def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(SECRET_KEY="dev", ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"),
                            REDIS_URL=os.environ.get("REDIS_URL"), MESSAGE_QUEUE=True, WEBSOCKET_COMPRESSION=False)
    app.config.from_prefixed_env()
    app.config.update(settings)
    if app.config["SECRET_KEY"] == "dev":
        app.logger.warning("FLASK_SECRET_KEY is not set: using the public development key")
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = start_private_redis()
    app.extensions["redis"] = store.connect(app.config["REDIS_URL"])
    # The message queue: every process publishes its emits on this Redis channel and
    # delivers the ones it reads there to its own clients, so rooms span processes.
    # (Flask-SocketIO's test client needs it off: MESSAGE_QUEUE=False.)
    queue = app.config["REDIS_URL"] if app.config["MESSAGE_QUEUE"] else None
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], message_queue=queue, channel=store.SOCKETIO_CHANNEL)
    if not app.config["WEBSOCKET_COMPRESSION"]:
        app.wsgi_app = decline_websocket_compression(app.wsgi_app)
    app.extensions["stop_forwarding"] = stop = threading.Event()  # set by whoever discards this app (tests)
    socketio.start_background_task(forward_notifications, app.config["REDIS_URL"], stop)

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode, username=session.get("username"))

    @app.post("/login")
    def login():
        """Remember who this browser is (a signed session cookie) and make them a known recipient."""
        try:
            name = store.check_name(request.form.get("username", "").strip())
            store.register(app.extensions["redis"], name)
        except ValueError as error:
            return login_failed(app, str(error), 400)
        except redis.RedisError:
            return login_failed(app, UNAVAILABLE, 503)
        session["username"] = name
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout():
        """Forget who this browser is."""
        session.clear()
        return redirect(url_for("index"))

    return app


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


def login_failed(app, error, status):
    """The login form again, saying why."""
    return render_template("index.html", async_mode=socketio.async_mode, username=None, error=error), status


def start_private_redis():
    """No REDIS_URL: run a private redis-server for as long as this process, and say how to share it."""
    private = PrivateRedis().start()
    atexit.register(private.remove)
    # Ctrl-C unwinds through atexit already; make a plain `kill` act as Ctrl-C. (Not
    # sys.exit: under eventlet a SystemExit raised in a green thread can leave the server up.)
    # Only as `python app.py`: under gunicorn, SIGTERM is gunicorn's graceful stop.
    if __name__ == "__main__":
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f" * No REDIS_URL: started a private Redis at {private.url}\n"
          f" * Run a second server on it: REDIS_URL={private.url} PORT=5001 python app.py\n"
          f" * Publish to it: REDIS_URL={private.url} python publish.py --to NAME \"hello\"", flush=True)
    return private.url


def private_room(name):
    """The room the server puts every connection of user ``name`` in: one address for all their tabs."""
    return f"user:{name}"


def reject(event, problem):
    """Tell the sender only what was wrong; the returned value answers an acknowledgement."""
    emit("bad_input", {"event": event, "error": problem})
    return {"error": problem}


def catch_up(name, after):
    """Send this connection every notification of ``name`` numbered above ``after``, and the read mark.

    Returns how many it sent, or None when Redis is away (the page then shows it).
    """
    try:
        missed = store.since(current_app.extensions["redis"], name, after)
        mark = store.read_up_to(current_app.extensions["redis"], name)
    except redis.RedisError:
        emit("status", {"available": False, "error": UNAVAILABLE})
        return None
    emit("status", {"available": True})
    emit("read", {"read_up_to": mark})
    for notification in missed:
        emit("notification", notification)
    return len(missed)


def last_seen(data):
    """The ``last_id`` a client sent (the highest notification number it has), or ValueError."""
    last_id = data.get("last_id", 0) if isinstance(data, dict) else None
    if type(last_id) is not int or last_id < 0:
        raise ValueError("'last_id' must be a whole number, 0 or more")
    return last_id


def forward_notifications(redis_url, stop):
    """Background task: forward each notification announced on Redis to its recipient's tabs in this process.

    Every server process runs one, and each delivers only to its own clients
    (``ignore_queue``): going through the message queue would deliver it once per process.
    When Redis goes away it retries, and after each (re)subscription it asks the
    clients to ``sync``, which replays whatever was stored while nobody listened.
    """
    attempt = 0
    while not stop.is_set():
        client = store.connect(redis_url)
        listener = client.pubsub(ignore_subscribe_messages=True)
        try:
            listener.subscribe(store.CHANNEL)
            attempt = 0
            socketio.emit("resync", ignore_queue=True)
            while not stop.is_set():
                message = listener.get_message(timeout=1)  # None after a quiet second: look at `stop` again
                if message is None:
                    continue
                try:
                    notification = store.parse(message["data"])
                except ValueError as error:
                    print(f"ignored on {store.CHANNEL}: {error}", file=sys.stderr, flush=True)
                    continue
                socketio.emit("notification", notification, to=private_room(notification["to"]), ignore_queue=True)
        except redis.RedisError as error:
            if attempt == 0:
                print(f"lost Redis at {redis_url} ({error}): retrying", file=sys.stderr, flush=True)
                socketio.emit("status", {"available": False, "error": UNAVAILABLE}, ignore_queue=True)
            socketio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1
        finally:
            listener.close()
            client.close()


@socketio.on("connect")
def sign_in(auth):
    """Admit only a logged-in user, put the connection in that user's room, and send what it missed."""
    name = session.get("username")
    if name is None:
        raise ConnectionRefusedError("log in first")
    # The room comes from the signed session cookie, never from anything the client sends.
    join_room(private_room(name))
    try:
        after = last_seen(auth or {})
    except ValueError as error:
        reject("connect", str(error))
        after = 0  # resending everything is safe: the page shows each number once
    catch_up(name, after)


@socketio.on("sync")
def sync(data):
    """Replay the notifications stored after ``last_id`` (the page asks after Redis comes back, or sees a gap)."""
    try:
        after = last_seen(data)
    except ValueError as error:
        return reject("sync", str(error))
    replayed = catch_up(session["username"], after)
    return {"error": UNAVAILABLE} if replayed is None else {"replayed": replayed}


@socketio.on("send_notification")
def send_notification(data):
    """Notify another user: store it in Redis, then announce it; the ack gives its number, or why not."""
    if not isinstance(data, dict):
        return reject("send_notification", "send an object {to, text}")
    try:
        notification = store.store_and_publish(current_app.extensions["redis"], data.get("to"),
                                               session["username"], data.get("text"))
    except ValueError as error:
        return reject("send_notification", str(error))
    except redis.RedisError:
        return {"error": UNAVAILABLE}
    return {"id": notification["id"]}


@socketio.on("mark_read")
def mark_read(data):
    """Mark notifications up to ``up_to`` as read, in Redis, and tell all the user's tabs in every process."""
    up_to = data.get("up_to") if isinstance(data, dict) else None
    if type(up_to) is not int or up_to < 0:
        return reject("mark_read", "'up_to' must be a whole number, 0 or more")
    name = session["username"]
    try:
        mark = store.mark_read(current_app.extensions["redis"], name, up_to)
    except redis.RedisError:
        return {"error": UNAVAILABLE}
    # Through the message queue: the user's tabs on the other server processes update too.
    socketio.emit("read", {"read_up_to": mark}, to=private_room(name))
    return {"read_up_to": mark}


@socketio.on("join")
def refuse_join(data):
    """Refuse the notes' client-chosen rooms: here the server alone decides, from the login."""
    return reject("join", f"rooms are not chosen by clients: you are in {private_room(session['username'])} only")


if __name__ == "__main__":
    socketio.run(create_app(), host=os.environ.get("HOST", "127.0.0.1"),
                 port=int(os.environ.get("PORT", 5000)), log_output=True, allow_unsafe_werkzeug=True)
