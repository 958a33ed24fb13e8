"""Chapter 10 in one of the benchmark's tuned configurations: its own app, changed only through options.

    ASYNC_MODE=eventlet PYTHONPATH=10_redis_pubsub python bench/serve.py   # socketio.run, like app.py
    ASYNC_MODE=gevent gunicorn -k gevent --chdir 10_redis_pubsub --pythonpath bench 'serve:create_app()'

What it may change (environment variables, each off unless set):

- ``BENCH_JSON=orjson``: Flask-SocketIO's ``json=`` option, with orjson behind the standard
  library's ``dumps``/``loads`` (every packet is encoded once per emit, decoded once per event);
- ``BENCH_NODELAY=1`` (socketio.run, eventlet): ``TCP_NODELAY`` on the listening socket, which the
  connections it accepts inherit on Linux, so a connect's small frames are not held back by
  Nagle's algorithm (gunicorn sets it on its own sockets);
- ``BENCH_MAX_SIZE=N`` (socketio.run, eventlet): the server's green thread pool, 1,000 by
  default: one per open connection, so the 1,001st client waits for a free one;
- ``BENCH_BUFFER=N`` (socketio.run, eventlet): the size of the read and write buffers eventlet's
  HTTP server gives every connection (8 KB and 16 KB by default), which a WebSocket keeps for
  its whole life, though after the handshake it reads and writes the socket directly;
- ``BENCH_TRACEMALLOC=1``: trace allocations from the start; ``GET /bench/tracemalloc?to=FILE``
  writes a snapshot there (how run.py profiles the memory per connection).
"""
import os

if __name__ == "__main__" and os.environ.get("ASYNC_MODE") == "eventlet":
    import eventlet  # as app.py does it: first, before anything opens a socket

    eventlet.monkey_patch()

import tracemalloc  # noqa: E402

if os.environ.get("BENCH_TRACEMALLOC"):
    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))

import app as chapter  # noqa: E402 (chapter 10's app.py, on PYTHONPATH or gunicorn's --chdir)


class OrjsonModule:
    """orjson behind the two functions python-socketio calls on its ``json`` module."""

    @staticmethod
    def dumps(value, **options):  # the options (separators) are what orjson always does
        """``value`` as compact JSON text."""
        import orjson

        return orjson.dumps(value).decode()

    @staticmethod
    def loads(text):
        """The value a JSON text encodes."""
        import orjson

        return orjson.loads(text)


def create_app():
    """Chapter 10's app, with the options the environment asks for."""
    if os.environ.get("BENCH_JSON") == "orjson":
        chapter.socketio.server_options["json"] = OrjsonModule  # read by init_app, inside create_app
    app = chapter.create_app()
    if tracemalloc.is_tracing():
        from flask import request

        @app.get("/bench/tracemalloc")
        def snapshot():
            tracemalloc.take_snapshot().dump(request.args["to"])
            return "written\n"

    return app


def main():
    """Serve the app with socketio.run, as app.py does, plus the eventlet options asked for."""
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", 5000))
    app = create_app()
    options = {}
    if os.environ.get("BENCH_MAX_SIZE"):
        options["max_size"] = int(os.environ["BENCH_MAX_SIZE"])
    if os.environ.get("BENCH_BUFFER"):
        import eventlet.wsgi

        class SmallBuffers(eventlet.wsgi.HttpProtocol):
            """eventlet's HTTP protocol, with buffers of BENCH_BUFFER bytes."""

            rbufsize = wbufsize = int(os.environ["BENCH_BUFFER"])

        options["protocol"] = SmallBuffers
    if os.environ.get("BENCH_NODELAY"):
        import socket

        import eventlet

        listener = eventlet.listen((host, port), backlog=1024)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # socketio.run would open its own socket: serve this one as it would (its eventlet branch).
        eventlet.wsgi.server(listener, app, log_output=False, **options)
        return
    chapter.socketio.run(app, host=host, port=port, log_output=False, allow_unsafe_werkzeug=True, **options)


if __name__ == "__main__":
    main()
