"""Servers as child processes: a chapter's ``app.py``, gunicorn serving a chapter, nginx in front of them."""
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from groundwork.redis_server import free_port

from . import chapter_dir


class ServerProcess:
    """A server run as ``command`` in a process group of its own, answering HTTP on 127.0.0.1:``port``.

    ``start()`` returns once ``url`` answers 200 (or raises with the server's output);
    ``stop()`` sends ``stop_signal`` to the whole group and kills it if it lingers, so
    no process outlives the caller.
    """

    name = "server"
    stop_signal = signal.SIGINT  # as Ctrl-C would
    echo = False  # True: its output goes to this process's terminal instead of output()
    stdin = subprocess.DEVNULL  # or a terminal's file descriptor, for a server that reads keys (chapter 10)

    def __init__(self, command, cwd, port=None, env=None):
        self.command = command
        self.cwd = cwd
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = None
        self._log = None
        self._output = ""

    def start(self, timeout=30):
        """Start the process and wait, up to ``timeout`` seconds, until it serves."""
        if not self.echo:
            self._log = tempfile.TemporaryFile(mode="w+", prefix=f"{self.name}-")
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdin=self.stdin,
                                        stdout=self._log, stderr=self._log and subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output() or '(above)'}")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    if response.status == 200:
                        return self
            # BadStatusLine: a port of the ephemeral range nobody listens on yet can connect to itself (TCP's
            # simultaneous open), and the poll reads back its own request.
            except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.BadStatusLine):
                time.sleep(0.05)  # not synchronisation: the pause between two polls
        self.stop()
        raise TimeoutError(f"{self.name} did not answer within {timeout}s:\n{self.output()}")

    def stop(self, timeout=10, signum=None):
        """Stop it with ``signum`` (else ``stop_signal``); kill the group if it is still there after ``timeout``."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum or self.stop_signal)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass  # it had exited already
        if self._log is not None:
            self._output = self.output()
            log, self._log = self._log, None
            log.close()

    def wait_for_output(self, text, timeout=5):
        """Whether the server prints ``text`` within ``timeout`` seconds (a poll on its log)."""
        deadline = time.monotonic() + timeout
        while text not in self.output() and time.monotonic() < deadline:
            time.sleep(0.05)  # not synchronisation: the pause between two polls
        return text in self.output()

    def output(self):
        """Everything the server printed so far (its log)."""
        return self.output_after(0).decode(errors="replace")

    def output_after(self, offset):
        """The bytes the server printed after the first ``offset``.

        Read with ``pread``: the process shares this file's position, so a seek here would
        make its next line land at the start of the file.
        """
        try:
            return os.pread(self._log.fileno(), os.fstat(self._log.fileno()).st_size, offset)
        except (AttributeError, ValueError, OSError):  # stopped: its log was kept, the file closed
            return self._output.encode()[offset:]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class ChapterServer(ServerProcess):
    """A chapter started as ``python app.py`` in its folder, as a learner would."""

    def __init__(self, chapter, async_mode="threading", port=None, env=None):
        self.folder = chapter_dir(str(chapter))
        self.name = self.folder.name
        self.async_mode = async_mode
        port = port or free_port()
        super().__init__([sys.executable, "app.py"], self.folder, port,
                         {"PORT": str(port), "ASYNC_MODE": async_mode, **(env or {})})


# gunicorn's worker class, and the async mode the app must then use.
WORKERS = {"gevent": "gevent", "gthread": "threading"}


class Gunicorn(ServerProcess):
    """``gunicorn 'app:create_app()'`` in a chapter's folder (or a ``Path``): one worker, gevent or threads.

    One worker per process, always: Socket.IO needs every request of a client to reach
    the process that holds its session. ``stop()`` sends SIGTERM, as a process manager
    does: gunicorn stops accepting, then gives open connections ``graceful_timeout`` seconds;
    ``stop(signum=signal.SIGINT)`` is Ctrl-C, gunicorn's quick shutdown.
    """

    stop_signal = signal.SIGTERM

    def __init__(self, chapter, worker="gevent", port=None, env=None, threads=100, graceful_timeout=30,
                 app="app:create_app()"):
        if worker not in WORKERS:
            raise ValueError(f"worker {worker!r}: use one of {', '.join(WORKERS)} (gunicorn 26 removed eventlet's)")
        self.folder = chapter if isinstance(chapter, Path) else chapter_dir(str(chapter))  # or any app's folder
        self.name = f"gunicorn-{worker}"
        self.worker = worker
        port = port or free_port()
        # --no-control-socket: gunicorn 27's default control socket is one path per user (~/.gunicorn), which
        # several processes would fight over; nothing here uses it.
        command = [sys.executable, "-m", "gunicorn", "--worker-class", worker, "--workers", "1",
                   *(["--threads", str(threads)] if worker == "gthread" else []), "--no-control-socket",
                   "--graceful-timeout", str(graceful_timeout), "--bind", f"127.0.0.1:{port}", app]
        super().__init__(command, self.folder, port, {"ASYNC_MODE": WORKERS[worker], **(env or {})})


class Nginx(ServerProcess):
    """Debian's nginx, run as this user from a temporary prefix, from a chapter's ``nginx.conf`` (or ``config``).

    The configuration's ``listen 8080;`` becomes this port and its upstream's
    ``server`` lines become ``upstreams`` ("127.0.0.1:PORT" each).
    """

    name = "nginx"
    stop_signal = signal.SIGTERM  # nginx's fast shutdown

    def __init__(self, upstreams, port=None, config=None):
        self.prefix = tempfile.mkdtemp(prefix="nginx-")
        port = port or free_port()
        text = config if config is not None else (chapter_dir("10") / "nginx.conf").read_text()
        lines = [line for line in text.replace("listen 8080;", f"listen 127.0.0.1:{port};").splitlines()
                 if not line.strip().startswith("server 127.0.0.1:")]
        at = next(i for i, line in enumerate(lines) if line.strip().startswith("upstream ")) + 1
        lines[at:at] = [f"        server {upstream};" for upstream in upstreams]
        self.config = Path(self.prefix, "nginx.conf")
        self.config.write_text("\n".join(lines) + "\n")
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        # As the README runs it: everything it writes goes under the temporary prefix, so no root.
        super().__init__([executable, "-p", self.prefix, "-c", str(self.config), "-e", "stderr"], self.prefix, port)

    def stop(self, timeout=10, signum=None):
        """Stop nginx and delete its prefix."""
        super().stop(timeout, signum)
        shutil.rmtree(self.prefix, ignore_errors=True)
