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
  writes a snapshot there (how run.py profiles the memory per connection);
- ``BENCH_PING_INTERVAL=S``: Engine.IO's ping interval (25 s by default; every connection pings
  that long after it opened, and again every S seconds);
- ``BENCH_PROBE=1``: where a server's time goes (``run.py --probe``): the event loop's lag (a task
  asks to sleep 1 ms and records how late it wakes) and every garbage collection's pause
  (``gc.callbacks``), by generation; ``GET /bench/probe`` answers them as JSON since the last
  ``GET /bench/probe?reset=1``;
- ``BENCH_GC``: the garbage collector, to compare settings where gunicorn reads no configuration
  file (run.py's ``gevent gc …`` servers): ``off`` (``gc.disable()``: a diagnosis only, cycles
  then leak), ``freeze`` (``gc.freeze()`` once, after start-up).
"""
import gc
import os
import statistics
import time

if __name__ == "__main__" and os.environ.get("ASYNC_MODE") == "eventlet":
    import eventlet  # as app.py does it: first, before anything opens a socket

    eventlet.monkey_patch()

import tracemalloc  # noqa: E402

if os.environ.get("BENCH_TRACEMALLOC"):
    tracemalloc.start(int(os.environ["BENCH_TRACEMALLOC"]))

import app as chapter  # noqa: E402 (chapter 10's app.py, on PYTHONPATH or gunicorn's --chdir)

from groundwork import serving  # noqa: E402


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
    if os.environ.get("BENCH_PING_INTERVAL"):  # seconds between Engine.IO's pings (25 by default)
        chapter.socketio.server_options["ping_interval"] = float(os.environ["BENCH_PING_INTERVAL"])
    if os.environ.get("BENCH_JSON") == "orjson":
        chapter.socketio.server_options["json"] = OrjsonModule  # read by init_app, inside create_app
    app = chapter.create_app()
    setting = os.environ.get("BENCH_GC")
    if setting == "off":
        gc.disable()
    elif setting == "freeze":
        gc.freeze()
    if os.environ.get("BENCH_PROBE"):
        Probe().install(app)
    if tracemalloc.is_tracing():
        from flask import request

        @app.get("/bench/tracemalloc")
        def snapshot():
            tracemalloc.take_snapshot().dump(request.args["to"])
            return "written\n"

    return app


class Probe:
    """The event loop's lag and the garbage collector's pauses, measured inside the server."""

    TICK = 0.001  # seconds the lag probe asks to sleep
    STALL = 0.010  # a wake-up this late is a stall: how much of it did the collector take?

    def __init__(self):
        self.lags, self.pauses, self.started = [], {0: [], 1: [], 2: []}, None
        self.collecting = 0.0  # seconds spent in the collector so far
        # Each wake-up later than STALL: (its lag, the collector's share of it, the process's CPU time meanwhile:
        # much less than the lag means the process waited for a core, i.e. the machine's other work).
        self.stalls = []

    def install(self, app):
        """Start measuring, and serve the figures at /bench/probe."""
        from flask import request

        gc.callbacks.append(self.collected)
        chapter.socketio.start_background_task(self.measure_lag)

        @app.get("/bench/probe")
        def probe():
            if "reset" in request.args:
                self.lags, self.pauses, self.stalls = [], {0: [], 1: [], 2: []}, []
            if "collect" in request.args:  # a full collection now, alone: what it costs with this many objects
                walked, cpu = len(gc.get_objects()), time.process_time()  # (frozen objects are not walked)
                gc.collect()
                cpu = time.process_time() - cpu
                return {"objects": walked, "frozen": gc.get_freeze_count(), "cpu_ms": cpu * 1000}
            return self.figures()

    def collected(self, phase, info):
        """gc.callbacks: a collection starts or stops."""
        if phase == "start":
            self.started = time.perf_counter()
        elif self.started is not None:
            pause = time.perf_counter() - self.started
            self.pauses[info["generation"]].append(pause)
            self.collecting += pause

    def measure_lag(self):
        """Background task: how late a 1 ms sleep wakes, again and again (the server's other tasks wait as long)."""
        while True:
            asked, collecting, working = time.perf_counter(), self.collecting, time.process_time()
            chapter.socketio.sleep(self.TICK)
            lag = time.perf_counter() - asked - self.TICK
            self.lags.append(lag)
            if lag > self.STALL:
                self.stalls.append((lag, self.collecting - collecting, time.process_time() - working))

    def figures(self):
        """The lag's percentiles and each generation's collections, in milliseconds, and the objects gc tracks."""
        lags = sorted(self.lags) or [0]
        at = lambda share: lags[min(len(lags) - 1, int(share * len(lags)))] * 1000  # noqa: E731
        return {"lag_ms": {"p50": at(0.5), "p99": at(0.99), "max": lags[-1] * 1000, "samples": len(self.lags)},
                "stalls": {"count": len(self.stalls), "total_ms": sum(lag for lag, _, _ in self.stalls) * 1000,
                           "in_gc_ms": sum(collecting for _, collecting, _ in self.stalls) * 1000,
                           "cpu_ms": sum(cpu for _, _, cpu in self.stalls) * 1000},
                "gc": {str(generation): {"count": len(pauses), "total_ms": sum(pauses) * 1000,
                                         "max_ms": max(pauses, default=0) * 1000,
                                         "median_ms": statistics.median(pauses) * 1000 if pauses else 0}
                       for generation, pauses in self.pauses.items()},
                "tracked_objects": len(gc.get_objects()), "frozen_objects": gc.get_freeze_count(),
                "threshold": gc.get_threshold()}


def main():
    """Serve the app with socketio.run, as app.py does, plus the eventlet options asked for."""
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", 5000))
    app = create_app()
    if not os.environ.get("BENCH_GC"):
        serving.keep_collections_short()  # as app.py's serving.run does
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
