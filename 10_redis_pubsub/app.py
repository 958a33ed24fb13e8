"""10 · Redis pub/sub: notifications for several server processes, nothing lost (notes: redis订阅+websocket)."""
import os

if __name__ == "__main__" and os.environ.get("ASYNC_MODE") == "eventlet":
    # First, before anything opens a socket: redis-py reads its sockets with blocking calls, which
    # would freeze every green thread, so python-socketio refuses Redis under eventlet unless the
    # standard library is patched to yield. (A gunicorn gevent worker patches by itself.)
    import eventlet
    eventlet.monkey_patch()

import atexit
import sys
import threading
import time

import notification_store as store
import redis
from flask import Flask, current_app, redirect, render_template, request, send_from_directory, session, url_for
from flask_socketio import ConnectionRefusedError, SocketIO, emit, join_room
from socketio import RedisManager

from groundwork import protect, reject, serving

socketio = SocketIO()
private_room = store.private_room  # "user:<name>": every tab of one user, in every process
UNAVAILABLE = "notifications unavailable: cannot reach Redis"
EVICTING = "notifications unavailable: Redis may evict them (its maxmemory-policy must be noeviction)"
EVICTION_CHECK = 5  # seconds between two looks at Redis's eviction policy (an operator can change it any time)
DOORBELL_BATCH = 100  # doorbells that arrived together are read in one round trip and delivered together, at most


# The lesson: each connection joins its user's room; a notification is stored, then
# announced; every process forwards what it hears to its own tabs; a tab that was
# away asks for what it missed, after the last notification it holds.

@socketio.on("connect")
def connect(auth):
    """Admit only a logged-in user, put the connection in that user's room, and send what it missed."""
    name = session.get("username")
    if name is None:
        raise ConnectionRefusedError("log in first")
    if open_connections() > current_app.config["MAX_CONNECTIONS"]:
        raise ConnectionRefusedError("server full: trying again in a moment", {"retry": True})
    # The room comes from the signed session cookie, never from anything the client sends.
    join_room(private_room(name))
    try:
        after = last_seen(auth)
    except ValueError as error:
        reject("connect", str(error))
        after = None  # the newest page again is safe: the page shows each notification once
    r = current_app.extensions["redis"]
    try:
        store.register(r, name)  # again: Redis may have lost its users
        store.allow_replay(r, name, current_app.config["REPLAY_LIMIT"])  # reconnecting in a loop is replaying
        emit("replay", replay(name, after))
    except store.RateLimited as error:
        emit("status", {"available": False, "error": str(error)})  # the page asks again (sync) a moment later
        return
    except redis.RedisError:
        emit("status", {"available": False, "error": UNAVAILABLE})
        return
    evicting = current_app.extensions["evicting"].is_set()
    emit("status", {"available": False, "error": EVICTING} if evicting else {"available": True})


@socketio.on("send_notification")
def send_notification(data):
    """Notify another user: store it in Redis, then ring the doorbell; the ack gives its id, or why not.

    ``key`` makes the send idempotent: the page sends again with the same key until it
    gets a definite answer, and a key that was stored gets its id back, not a second copy.
    """
    if not isinstance(data, dict):
        return reject("send_notification", "send an object {to, text, key}")
    if current_app.extensions["evicting"].is_set():
        return {"error": EVICTING, "retry": True}  # the page keeps its message until Redis is safe again
    try:
        entry_id = store.store(current_app.extensions["redis"], data.get("to"), session["username"], data.get("text"),
                               data.get("key"), limit=current_app.config["RATE_LIMIT"],
                               replicas=current_app.config["REDIS_REPLICAS"])
    except ValueError as error:
        return reject("send_notification", str(error))
    except store.NotReplicated as error:
        return {"error": str(error), "retry": True}  # stored on the primary only: the same key again settles it
    except redis.RedisError:
        return {"error": UNAVAILABLE, "retry": True}  # maybe stored, maybe not: the same key again settles it
    return {"id": entry_id}


def forward_notifications(redis_url, stop, forwarding, evicting):
    """Background task: forward each doorbell rung on Redis to its recipient's tabs in this process.

    Every server process runs one, and each delivers only to its own clients
    (``ignore_queue``): going through the message queue would deliver it once per process.
    It sends what the store holds, read by id: a doorbell for nothing stored delivers nothing.
    When Redis goes away it retries, and after each (re)subscription it asks the
    clients to ``sync``, which replays whatever was stored while nobody listened.
    It also looks at Redis's eviction policy, on each (re)subscription and every
    EVICTION_CHECK seconds: while Redis may evict keys, ``evicting`` is set and sends are refused.
    """
    attempt = 0
    while not stop.is_set():
        client = store.connect(redis_url)
        listener = client.pubsub(ignore_subscribe_messages=True)
        try:
            check_eviction(client, evicting)
            checked = time.monotonic()
            listener.subscribe(store.CHANNEL)
            store.register(client, *connected_users())  # a Redis that restarted empty knows them again at once
            forwarding.set()
            if attempt:
                print("Redis is back: notifications flow again", file=sys.stderr, flush=True)
            attempt = 0
            socketio.emit("resync", ignore_queue=True)
            while not stop.is_set():
                if time.monotonic() - checked > EVICTION_CHECK:
                    check_eviction(client, evicting)
                    checked = time.monotonic()
                message = listener.get_message(timeout=1)  # None after a quiet second: look at `stop` again
                if message is not None:
                    deliver(client, [message, *rung_since(listener)])
        except redis.RedisError as error:
            forwarding.clear()
            if stop.is_set():
                break  # shutting down: Redis may go first, and that is no outage
            if attempt == 0:
                print(f"lost Redis ({error}): retrying", file=sys.stderr, flush=True)
                socketio.emit("status", {"available": False, "error": UNAVAILABLE}, ignore_queue=True)
            socketio.sleep(store.retry_delay(attempt))
            attempt += 1
        finally:
            listener.close()
            client.close()


def rung_since(listener, most=DOORBELL_BATCH):
    """The doorbells already waiting on ``listener``, up to ``most``: read without waiting."""
    rung = []
    while len(rung) < most and (message := listener.get_message(timeout=0)) is not None:
        rung.append(message)
    return rung


def deliver(client, rung):
    """Send the notifications these doorbells name to their recipients' tabs in this process.

    They are read from the stream together, in one round trip, and emitted one after the
    other: a tab's writer then wakes once for all of its new notifications, not once for each.
    """
    wanted = []
    for message in rung:
        try:
            name, entry_id = store.parse_doorbell(message["data"])
        except ValueError as error:
            print(f"ignored on {store.CHANNEL}: {error}", file=sys.stderr, flush=True)
            continue
        if private_room(name) in socketio.server.manager.rooms.get("/", {}):
            wanted.append((name, entry_id))
    for notification in store.read_each(client, wanted):
        socketio.emit("notification", notification, to=private_room(notification["to"]), ignore_queue=True)


@socketio.on("sync")
def sync(data):
    """Answer with the notifications stored after ``last_id`` (a page that saw a gap, or Redis came back)."""
    if current_app.extensions["evicting"].is_set():
        return {"error": EVICTING, "retry": True}  # the page keeps saying so, and asks again a moment later
    try:
        after = last_seen(data)
        store.allow_replay(current_app.extensions["redis"], session["username"], current_app.config["REPLAY_LIMIT"])
        return replay(session["username"], after)
    except store.RateLimited as error:
        return {"error": str(error), "retry": True}
    except ValueError as error:
        return reject("sync", str(error))
    except redis.RedisError:
        return {"error": UNAVAILABLE, "retry": True}


@socketio.on("older")
def older(data):
    """Answer with the page of notifications before ``before`` (the page shows only the newest)."""
    try:
        newest = store.checked_id(data.get("before") if isinstance(data, dict) else None, "before")
        store.allow_replay(current_app.extensions["redis"], session["username"], current_app.config["REPLAY_LIMIT"])
        notifications, more = store.before(current_app.extensions["redis"], session["username"], newest)
    except store.RateLimited as error:
        return {"error": str(error), "retry": True}
    except ValueError as error:
        return reject("older", str(error))
    except redis.RedisError:
        return {"error": UNAVAILABLE, "retry": True}
    return {"notifications": notifications, "more": more}


@socketio.on("mark_read")
def mark_read(data):
    """Mark notifications up to ``up_to`` as read, in Redis, and tell all the user's tabs in every process."""
    try:
        up_to = store.checked_id(data.get("up_to") if isinstance(data, dict) else None, "up_to")
    except ValueError as error:
        return reject("mark_read", str(error))
    name = session["username"]
    try:
        mark = store.mark_read(current_app.extensions["redis"], name, up_to)
    except redis.RedisError:
        return {"error": UNAVAILABLE, "retry": True}
    # Through the message queue: the user's tabs on the other server processes update too.
    socketio.emit("read", {"read_up_to": mark}, to=private_room(name))
    return {"read_up_to": mark}


@socketio.on("join")
def join(data):
    """Refuse the notes' client-chosen rooms: here the server alone decides, from the login."""
    return reject("join", f"rooms are not chosen by clients: you are in {private_room(session['username'])} only")


def check_eviction(client, evicting):
    """Set ``evicting`` (and tell every page and the log) while Redis may evict keys; clear it once it may not."""
    try:
        store.check_no_eviction(client)
    except store.Evicting as error:
        if not evicting.is_set():
            print(f"refusing sends: {error}", file=sys.stderr, flush=True)
            socketio.emit("status", {"available": False, "error": EVICTING}, ignore_queue=True)
        evicting.set()
        return
    if evicting.is_set():
        print("Redis no longer evicts: sends accepted again", file=sys.stderr, flush=True)
        socketio.emit("resync", ignore_queue=True)
    evicting.clear()


def replay(name, after):
    """What a page needs to catch up: a page of notifications after ``after`` (the newest if None), the read mark.

    ``unknown``: the id the page sent is not one this store gave (it was reset, or the id was
    forged): the page starts again from the newest, instead of waiting for ids after a bad one.
    """
    r = current_app.extensions["redis"]
    unknown = after is not None and not store.knows(r, name, after)
    notifications, more = store.since(r, name, None if unknown else after)
    return {"after": None if unknown else after, "unknown": unknown, "notifications": notifications, "more": more,
            "read_up_to": store.read_up_to(r, name)}


def last_seen(data):
    """The ``last_id`` a client sent (the newest notification it holds in an unbroken run), None for none."""
    if data is not None and not isinstance(data, dict):
        raise ValueError("send an object {last_id}")
    last_id = (data or {}).get("last_id")
    return None if last_id is None else store.checked_id(last_id, "last_id")


def open_connections():
    """How many connections this process holds open, the one connecting now included (Engine.IO keeps
    closed ones in its list for a moment)."""
    return sum(not connection.closed for connection in socketio.server.eio.sockets.values())


def connected_users():
    """The names of the users with a connection to this process."""
    rooms = list(socketio.server.manager.rooms.get("/", {}))
    return [room.removeprefix(private_room("")) for room in rooms
            if isinstance(room, str) and room.startswith(private_room(""))]


# Below the lesson: the Flask app around the handlers (settings, the message queue, login and the page).

def create_app(**settings):
    """Create the app: defaults, then FLASK_* environment variables, then ``settings``."""
    app = Flask(__name__, static_folder="../static")
    app.config.from_mapping(ASYNC_MODE=os.environ.get("ASYNC_MODE", "threading"), REDIS_URL=os.environ.get("REDIS_URL"),
                            MESSAGE_QUEUE=True, WEBSOCKET_COMPRESSION=False, RATE_LIMIT=store.RATE_LIMIT,
                            REPLAY_LIMIT=store.REPLAY_LIMIT, MAX_CONNECTIONS=serving.MAX_CONNECTIONS,
                            SESSION_COOKIE_SAMESITE="Lax")
    app.config.from_prefixed_env()
    app.config.update(settings)
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = serving.start_private_redis(app)
    sentinel = app.config["REDIS_URL"].startswith("redis+sentinel://")
    # With Sentinel there is a replica: a send is acknowledged once it holds the notification too.
    app.config.setdefault("REDIS_REPLICAS", 1 if sentinel else 0)
    app.extensions["redis"] = store.connect(app.config["REDIS_URL"])
    try:
        store.check_no_eviction(app.extensions["redis"])  # refuse to start on a Redis that may evict notifications
    except redis.ConnectionError:
        pass  # not reachable yet: the subscriber checks once it reaches Redis
    # The message queue: every process publishes its emits on this Redis channel and
    # delivers the ones it reads there to its own clients, so rooms span processes.
    # (Flask-SocketIO's test client needs it off: MESSAGE_QUEUE=False.)
    queue = app.config["REDIS_URL"] if app.config["MESSAGE_QUEUE"] else None
    # Flask-SocketIO 5.7 gives only redis:// URLs to python-socketio's RedisManager, which reads Sentinel URLs too.
    manager = {"client_manager": RedisManager(queue, channel=store.SOCKETIO_CHANNEL)} if queue and sentinel else {}
    socketio.init_app(app, async_mode=app.config["ASYNC_MODE"], message_queue=queue, channel=store.SOCKETIO_CHANNEL,
                      **manager)
    serving.quiet_queue_retries(socketio)
    if not app.config["WEBSOCKET_COMPRESSION"]:
        app.wsgi_app = serving.decline_websocket_compression(app.wsgi_app)
    protect(app, socketio)  # below the lesson: 01_setup/README.md, "What protect() does"
    # The Socket.IO Admin UI (served from static/vendor/admin-ui/) shows the sockets, rooms and events of every
    # process on this Redis: only with a password (FLASK_ADMIN_PASSWORD), read-only unless FLASK_ADMIN_READ_ONLY=false.
    if app.config.get("ADMIN_PASSWORD"):
        socketio.server.instrument(auth={"username": "admin", "password": app.config["ADMIN_PASSWORD"]},
                                   read_only=app.config.get("ADMIN_READ_ONLY", True))
    app.extensions["stop_forwarding"] = stop = threading.Event()  # set by whoever discards this app (tests)
    atexit.register(stop.set)  # atexit runs the latest first: the forwarder stops before a private Redis does
    app.extensions["forwarding"] = forwarding = threading.Event()  # set while the subscriber listens
    app.extensions["evicting"] = evicting = threading.Event()  # set while Redis may evict keys: sends are refused
    socketio.start_background_task(forward_notifications, app.config["REDIS_URL"], stop, forwarding, evicting)

    @app.get("/")
    def index():
        return render_template("index.html", async_mode=socketio.async_mode, username=session.get("username"),
                               page=store.PAGE)

    @app.get("/notifications.js")
    def notifications_js():
        """The page's client logic, a file of its own so that the chaos rig runs the very same code under Node."""
        return send_from_directory(app.root_path, "notifications.js")

    @app.post("/login")
    def login():
        """Remember who this browser is (a signed session cookie) and make them a known recipient."""
        if from_another_site():
            return login_failed("log in from this site's own page", 403)
        try:
            name = store.checked_login_name(request.form.get("username", ""))
            store.register(app.extensions["redis"], name)
        except ValueError as error:
            return login_failed(str(error), 400)
        except redis.RedisError:
            return login_failed(UNAVAILABLE, 503)
        session["username"] = name
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout():
        """Forget who this browser is (its page closes its connection as it leaves)."""
        if from_another_site():
            return "log out from this site's own page", 403
        session.clear()
        return redirect(url_for("index"))

    return app


def from_another_site():
    """Whether a browser sent this form from another site's page: its Origin is not ours (SameSite=Lax keeps
    the cookie off another site's background requests, not off its top-level form posts)."""
    return request.origin not in (None, request.host_url.rstrip("/"))


def login_failed(error, status):
    """The login form again, saying why."""
    return render_template("index.html", async_mode=socketio.async_mode, username=None, error=error), status


if __name__ == "__main__":
    serving.run(socketio, create_app())
