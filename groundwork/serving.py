"""How chapter 10 runs as a server, out of the lesson's way: the WebSocket compression it declines,
its private Redis (the commands that share it, the outage demo), a log that tells an outage once,
and the limits of each async mode.

``app.py`` calls these; nothing here is about notifications.
"""
import atexit
import contextlib
import gc
import os
import resource
import signal
import sys
import threading
import time

from .redis_server import PrivateRedis

# Eventlet's WSGI server serves at most this many connections at once (its default, 1024,
# would leave tab 1,023 on "connecting…"); each idle one costs a green thread, a few KB.
EVENTLET_CONNECTIONS = 10_000


# Tabs one process admits: the next one is refused with "server full" and tries again, before
# the server's own pool (gunicorn.conf.py's worker_connections, EVENTLET_CONNECTIONS) is full
# and a new connection would wait unanswered. Measured: bench/README.md, "Capacity".
MAX_CONNECTIONS = 5_000


def raise_open_file_limit(needed):
    """Raise this process's open-file limit to ``needed`` (no further than its hard limit, which only root may
    raise); the processes it starts inherit it. Returns the limit now (each connection is an open file)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# Python's cyclic garbage collector stops the whole process while it runs, and a full collection
# walks every object still alive: with thousands of open connections (~140-180 objects each),
# 50-250 ms during which no notification moves. Objects that have lived a second are moved out of
# its sight (gc.freeze()), so a collection walks only the newest ones. A connection outlives that
# second, so its cycles are frozen when it closes (about 8 KB of them): every FULL_COLLECTION_EVERY
# seconds everything is thawed and collected, one pause (0.1-0.5 s with 1,000-5,000 connections)
# instead of one every few thousand new connections (bench/README.md, "Where the time goes").
FREEZE_EVERY = 1
FULL_COLLECTION_EVERY = 600


def keep_collections_short(freeze_every=FREEZE_EVERY, full_collection_every=FULL_COLLECTION_EVERY):
    """Start a background thread (a greenlet under gevent/eventlet) that freezes the objects alive every
    ``freeze_every`` seconds, and thaws and collects everything every ``full_collection_every`` seconds;
    call it in the serving process."""
    def freeze():
        collected = time.monotonic()
        while True:
            time.sleep(freeze_every)
            if time.monotonic() - collected >= full_collection_every:
                gc.unfreeze()
                gc.collect()  # the cycles that died while frozen: the pause, once in a while
                collected = time.monotonic()
            else:
                gc.collect(1)  # the young generations only (a millisecond or two): freeze no garbage
            gc.freeze()

    gc.freeze()  # what start-up made lives as long as the process
    threading.Thread(target=freeze, name="keep-collections-short", daemon=True).start()


def decline_websocket_compression(wsgi_app):
    """WSGI middleware: every WebSocket handshake reaches the server as if the client offered no compression.

    Browsers always offer permessage-deflate, and the WebSocket servers of every async mode
    (eventlet's, simple-websocket's) accept it with no option to refuse; for notifications of
    a few hundred bytes it costs far more (CPU per message and recipient, ~90 KB of zlib state
    per connection) than it saves. Node's Socket.IO server declines it by default too.
    Set FLASK_WEBSOCKET_COMPRESSION=true to accept it again; see 10_redis_pubsub/RUNNING.md, "Compression".
    """
    def without_compression_offer(environ, start_response):
        environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
        return wsgi_app(environ, start_response)

    return without_compression_offer


def start_deaf_to_ctrl_c(redis):
    """Start a private Redis with SIGINT blocked, a mask it inherits and keeps.

    Ctrl-C in a terminal signals its whole foreground process group, this Redis included; it
    must outlive the servers that use it, until ``stop()`` ends it with SIGTERM.
    """
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return redis.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def start_private_redis(app):
    """No REDIS_URL: run a private redis-server (random password) for as long as this process; return its URL.

    Durable (each write on disk before Redis answers), so that the outage demo's stop and
    start keeps the notifications, as a real Redis with persistence does.
    """
    private = start_deaf_to_ctrl_c(PrivateRedis(durable=True))
    atexit.register(private.remove)
    app.extensions["private_redis"] = private
    return private.url


def share_private_redis(app, private):
    """Print how to run a second server and publish on ``private``, as commands that run as printed.

    The URL holds the password: it goes to a file only its owner reads, and the commands read it
    from there, so it is in no terminal's scrollback.
    """
    url_file = os.path.join(app.instance_path, "redis_url")
    os.makedirs(app.instance_path, exist_ok=True)
    with open(os.open(url_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(private.url)
    atexit.register(remove_if_there, url_file)
    here = os.getcwd()
    python, script, url_file = (shorter_path(path, here) for path in (sys.executable, app.root_path, url_file))
    run_app, run_publish = (os.path.join(script, name) if script != "." else name for name in ("app.py", "publish.py"))
    port = int(os.environ.get("PORT", 5000))
    print(f" * No REDIS_URL: started a private Redis on 127.0.0.1:{private.port}; its URL, password included, "
          f"is in {url_file}\n"
          f" * In another terminal, in {here}:\n"
          f"   a second server:  REDIS_URL=$(cat {url_file}) PORT={port + 1} {python} {run_app}\n"
          f"   a notification:   REDIS_URL=$(cat {url_file}) {python} {run_publish} --to bob \"hello\"", flush=True)


def remove_if_there(path):
    """Delete a file that another process (a second app started here without REDIS_URL) may have deleted first."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def shorter_path(path, start):
    """``path`` relative to ``start`` when that stays inside their common folder, else absolute."""
    relative = os.path.relpath(path, start)
    return path if relative.startswith(os.path.join(os.pardir, os.pardir)) else relative


def offer_outage_demo(private):
    """Enter in the server's terminal stops ``private``, Enter again starts it (chapter 10's "Try this", step 3)."""
    if not sys.stdin.isatty():
        return  # no terminal to type in (the hub, a service, a test without one)
    print(" * Outage demo: press Enter here to stop this Redis, Enter again to start it", flush=True)

    def toggle():
        while os.read(sys.stdin.fileno(), 1024):  # eventlet's patched os.read waits without blocking the server
            if private.process.poll() is None:
                private.stop()
            else:
                start_deaf_to_ctrl_c(private)

    threading.Thread(target=toggle, daemon=True).start()


def quiet_queue_retries(socketio):
    """Keep python-socketio's message-queue retry lines out of the log.

    Its listener reconnects by itself (after 1, 2, 4 … up to 60 s) and logs every failed
    receive and publish; the forwarder of app.py tells the same outage in one line when it
    starts and one when it ends.
    """
    socketio.server.logger.addFilter(not_a_queue_retry)


def not_a_queue_retry(record):
    """Whether a log record of python-socketio is something other than its message queue retrying."""
    return not record.getMessage().startswith(("Cannot receive from redis", "Cannot publish to redis"))


def run(socketio, app):
    """Serve ``app`` as ``python app.py`` does: HOST and PORT from the environment, 127.0.0.1:5000 by default."""
    # Ctrl-C unwinds through atexit (which stops a private Redis); make a plain `kill` act as Ctrl-C.
    # (Not sys.exit: under eventlet a SystemExit raised in a green thread can leave the server up.)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    private = app.extensions.get("private_redis")
    if private is not None:
        share_private_redis(app, private)
        offer_outage_demo(private)
    raise_open_file_limit(EVENTLET_CONNECTIONS + 100)
    keep_collections_short()
    options = {"max_size": EVENTLET_CONNECTIONS} if socketio.async_mode == "eventlet" else {}
    socketio.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", 5000)),
                 log_output=True, allow_unsafe_werkzeug=True, **options)
