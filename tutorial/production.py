"""Chapter 10 in the shape it runs in for real, on this machine: ``python -m tutorial run 10 --scale 3``.

One Redis (the chapter's private one), one random secret key shared by every process,
N gunicorn processes of one worker each, nginx in front with sticky sessions on one port.
"""
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from groundwork.redis_server import PrivateRedis
from groundwork.serving import raise_open_file_limit, shorter_path, start_deaf_to_ctrl_c

from . import chapter_dir
from .servers import WORKERS, Gunicorn, Nginx

CHAPTER = "10"


def nginx_open_files():
    """The open files nginx needs: one per connection of chapter 10's nginx.conf (worker_connections), and its own."""
    configured = re.search(r"worker_connections\s+(\d+)", (chapter_dir(CHAPTER) / "nginx.conf").read_text())
    return (int(configured.group(1)) if configured else 512) + 100  # 512: nginx's default


class Cluster:
    """Redis, ``scale`` gunicorn processes on it sharing one secret key, and nginx in front of them on ``port``.

    ``redis_url`` given: use that Redis; else start a private one, removed by ``stop()``.
    """

    def __init__(self, scale=3, worker="gevent", port=None, redis_url=None, secret_key=None, graceful_timeout=30,
                 echo=False):
        if worker not in WORKERS:
            raise ValueError(f"worker {worker!r}: use one of {', '.join(WORKERS)} "
                             "(gunicorn 26 removed its eventlet worker: use gevent)")
        self.scale, self.worker, self.port = scale, worker, port
        self.redis_url, self.redis = redis_url, None
        # Every process must read the session cookies the others signed: one key for all.
        self.env = {"FLASK_SECRET_KEY": secret_key or secrets.token_hex(32)}
        self.graceful_timeout = graceful_timeout
        self.echo = echo  # the processes' output to this terminal
        self.servers, self.nginx = [], None

    def start(self):
        """Start Redis, the gunicorn processes, then nginx; return once nginx serves the page."""
        # Raised here, inherited by nginx (and the gunicorn processes, which raise theirs again: gunicorn.conf.py).
        needed = nginx_open_files()
        if (allowed := raise_open_file_limit(needed)) < needed:
            print(f" * Open files allowed: {allowed} (`ulimit -Hn`), nginx.conf's connections need {needed}: "
                  "fewer tabs fit", flush=True)
        try:
            if self.redis_url is None:
                self.redis = start_deaf_to_ctrl_c(PrivateRedis())
                self.redis_url = self.redis.url
            self.env["REDIS_URL"] = self.redis_url
            self.servers = [self._gunicorn() for _ in range(self.scale)]
            with ThreadPoolExecutor() as starting:  # all at once: each takes a second or two to import the app
                list(starting.map(lambda server: server.start(), self.servers))
            self.nginx = Nginx([server.url.removeprefix("http://") for server in self.servers], self.port)
            self.nginx.echo = self.echo
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        self.url = self.nginx.url
        return self

    def _gunicorn(self, port=None):
        server = Gunicorn(CHAPTER, self.worker, port, self.env, graceful_timeout=self.graceful_timeout)
        server.echo = self.echo
        return server

    def stop_server(self, index):
        """Stop process ``index`` as a process manager would: SIGTERM, open connections get ``graceful_timeout``."""
        self.servers[index].stop(timeout=self.graceful_timeout + 10)

    def start_server(self, index):
        """Start process ``index`` again, on its port."""
        self.servers[index] = self._gunicorn(self.servers[index].port).start()
        return self.servers[index]

    def stop(self):
        """Stop nginx, the gunicorn processes (all at once: each may wait for its connections), then the Redis."""
        if self.nginx is not None:
            self.nginx.stop()
        with ThreadPoolExecutor() as stopping:
            list(stopping.map(lambda server: server.stop(timeout=self.graceful_timeout + 10), self.servers))
        if self.redis is not None:
            self.redis.remove()

    def describe(self):
        """What runs, for the person who started it."""
        lines = [f" * Chapter 10 for real: {self.url}  (nginx, sticky sessions: ip_hash)"]
        lines += [f"   - gunicorn -k {server.worker} -w 1 on {server.url}  (pid {server.process.pid})"
                  for server in self.servers]
        here = os.getcwd()
        python, publish = (shorter_path(path, here) for path in (sys.executable, chapter_dir(CHAPTER) / "publish.py"))
        lines += ["   - Redis: the message queue and the stored notifications (its URL: in the Publish command below)",
                  f"   - one random FLASK_SECRET_KEY, shared by the {self.scale} processes",
                  f" * Publish, in another terminal, in {here}:\n"
                  f"   REDIS_URL={self.redis_url} {python} {publish} --to bob \"hi\"",
                  " * Ctrl-C stops all of it."]
        return "\n".join(lines)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def serve(scale, port, redis_url=None):
    """Run the cluster (on ``redis_url``, else a private Redis) until Ctrl-C (or SIGTERM), then stop what it started."""
    worker = {"gevent": "gevent", "threading": "gthread"}.get(os.environ.get("ASYNC_MODE", "gevent"))
    if worker is None:
        raise ValueError(f"ASYNC_MODE={os.environ['ASYNC_MODE']} with --scale: use gevent (the default) or threading; "
                         "gunicorn 26 removed its eventlet worker")
    if not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        raise SystemExit("--scale puts nginx in front: install it first (scripts/install-system-packages, "
                         "or sudo apt-get install nginx-light)")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx: a previous run's TIME_WAIT is fine
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is taken: choose another, e.g. PORT={port + 1} make run CHAPTER=10 "
                             f"SCALE={scale}") from None
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    # At a desk, Ctrl-C should not wait gunicorn's 30 s for open tabs: they reconnect anyway.
    cluster = Cluster(scale, worker, port, redis_url=redis_url, graceful_timeout=3, echo=True)
    try:
        cluster.start()
    except (RuntimeError, TimeoutError) as error:  # start() stopped whatever it had started
        raise SystemExit(f"chapter 10 could not start (is port {port} free?): {error}") from None
    try:
        print(cluster.describe(), flush=True)
        stopping.wait()
        print(" * Stopping nginx, the gunicorn processes and Redis…", flush=True)
    finally:
        cluster.stop()
