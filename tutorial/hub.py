"""The classroom hub: every chapter as its own server, and one page to open them and show what each adds.

The hub is a small Flask app (no Socket.IO: the page polls a JSON status). It starts
every chapter at once, in the background, each as ``python app.py`` on its own port
(through ``ChapterServer``), so a click never waits for a start; a chapter that failed
or exited is started again when someone opens it. Stopping the hub stops them all.
"""
import ast
import difflib
import logging
import os
import re
import secrets
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from flask import Flask, abort, jsonify, redirect, render_template, request
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer
from werkzeug.serving import make_server

from . import ROOT
from .servers import ChapterServer, free_port

# The docstring every chapter's app.py opens with (CONTRIBUTING.md): "NN · Title: summary (notes: 中文)."
DOCSTRING = re.compile(r"\d+ · (?P<title>[^:]+): (?P<summary>.+) \(notes: (?P<notes_title>.+)\)\.?", re.S)
# Raw HTML in a README stays text: a README is content, never markup that runs in the hub.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
LOCAL, ALL_INTERFACES = "127.0.0.1", "0.0.0.0"


@dataclass(frozen=True)
class Chapter:
    """A chapter folder and the titles its ``app.py`` docstring gives."""

    folder: Path
    number: str
    title: str
    summary: str
    notes_title: str

    @classmethod
    def read(cls, folder):
        """Read the titles from the module docstring, without importing the app."""
        number, _, name = folder.name.partition("_")
        try:
            docstring = ast.get_docstring(ast.parse((folder / "app.py").read_text(encoding="utf-8"))) or ""
        except SyntaxError:  # a chapter being written: list it by its folder name
            docstring = ""
        match = DOCSTRING.fullmatch(docstring.strip())
        if match is None:
            return cls(folder, number, name.replace("_", " ").capitalize(), docstring.split("\n")[0], "")
        return cls(folder, number, match["title"], match["summary"], match["notes_title"])

    def source(self, path):
        """The text of one of the chapter's files, or "" if it has none."""
        file = self.folder / path
        return file.read_text(encoding="utf-8") if file.is_file() else ""

    def readme_html(self):
        """The chapter's README.md rendered as HTML (raw HTML in it escaped), or None."""
        text = self.source("README.md")
        return MARKDOWN.render(text) if text else None


def diff_html(old, new, path):
    """``path`` of chapter ``old`` (or nothing) against chapter ``new``, as highlighted, escaped HTML."""
    before = old.source(path).splitlines() if old else []
    lines = list(difflib.unified_diff(before, new.source(path).splitlines(), lineterm=""))
    # Skip the "---"/"+++" file headers: the page names the files, and "+++" would look like an added line.
    return highlight("\n".join(lines[2:]) + "\n", DiffLexer(), HtmlFormatter()) if lines else None


def pick_port(host, preferred):
    """``preferred`` if it is free (stable links across hub restarts), otherwise any free port."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, preferred))
            return preferred
        except (OSError, OverflowError):  # busy, or past 65535
            return free_port(host)


def debug_requested(environ):
    """Whether FLASK_DEBUG would turn a chapter's debugger on (its config parses the value as JSON)."""
    return environ.get("FLASK_DEBUG", "").strip().lower() not in ("", "0", "false")


def lan_addresses():
    """This machine's IPv4 addresses on interfaces that are up, loopback excluded (read locally, no traffic)."""
    up = {name for name, stats in psutil.net_if_stats().items() if stats.isup}
    return [address.address for name, addresses in psutil.net_if_addrs().items() if name in up
            for address in addresses
            if address.family == socket.AF_INET and not address.address.startswith("127.")]


class ChapterSlot:
    """One chapter in the hub: its server process, its port and its status."""

    def __init__(self, chapter, host, preferred_port, async_mode, env):
        self.chapter = chapter
        self.host = host
        self.preferred_port = preferred_port
        self.port = preferred_port
        self.async_mode = async_mode
        self.env = env
        self.server = None
        self.starting = False
        self.closed = False
        self._lock = threading.Lock()  # one start or stop at a time; stop waits for a start to finish

    @property
    def status(self):
        """stopped, starting, running, or failed (it would not start, or exited)."""
        if self.starting:
            return "starting"
        if self.server is None or self.closed:
            return "stopped"
        return "running" if self.server.process.poll() is None else "failed"

    def start(self):
        """Start the server unless it runs already; True once it serves."""
        with self._lock:
            if self.closed or self.status == "running":
                return self.status == "running"
            if self.server is not None:
                self.server.stop()  # it failed: release its log before starting again
            self.starting = True  # first: the status must not look at a server that has no process yet
            self.port = pick_port(self.host, self.preferred_port)
            self.server = ChapterServer(self.chapter.folder.name, self.async_mode, port=self.port, env=self.env)
            try:
                self.server.start()
            except (RuntimeError, TimeoutError) as error:
                self.server.stop()
                print(f"hub: {error}", file=sys.stderr)
            finally:
                self.starting = False
            return self.status == "running"

    def stop(self):
        """Stop the server for good: Ctrl-C to its process group, then kill if it lingers."""
        with self._lock:
            self.closed = True
            if self.server is not None:
                self.server.stop()


class Hub:
    """Every chapter's slot, started together and stopped together."""

    def __init__(self, chapters, host=LOCAL, port=5000, async_mode="threading"):
        # The hub decides where chapters listen; in LAN mode their debugger is off whatever the environment says.
        env = {"HOST": host, **({"FLASK_DEBUG": "0"} if host != LOCAL else {})}
        if "FLASK_SECRET_KEY" not in os.environ:  # never the public development key, least of all on a network
            env["FLASK_SECRET_KEY"] = secrets.token_hex(32)
        self.host, self.port, self.async_mode, self.chapter_env = host, port, async_mode, env
        self.chapters = [Chapter.read(folder) for folder in chapters]
        self.slots = {chapter.number: ChapterSlot(chapter, host, port + int(chapter.number), async_mode, env)
                      for chapter in self.chapters}

    def start_all(self):
        """Start every chapter at once, in the background: the hub page answers meanwhile."""
        for slot in self.slots.values():
            threading.Thread(target=slot.start, name=f"start {slot.chapter.number}", daemon=True).start()

    def stop_all(self):
        """Stop every chapter, in parallel; returns once all are gone."""
        with ThreadPoolExecutor() as pool:
            list(pool.map(ChapterSlot.stop, self.slots.values()))

    def neighbours(self, number):
        """The chapter before and after ``number`` in the list (or None)."""
        numbers = list(self.slots)
        index = numbers.index(number)
        before = self.slots[numbers[index - 1]].chapter if index > 0 else None
        after = self.slots[numbers[index + 1]].chapter if index + 1 < len(numbers) else None
        return before, after


def url_on_this_host(port):
    """A chapter's address on the host name the browser reached the hub by (127.0.0.1, or the LAN address)."""
    host = urlsplit(request.host_url).hostname
    return f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}/"


def create_app(hub):
    """The hub's pages: the list, a chapter's changes, a chapter in two frames; and the status as JSON."""
    app = Flask(__name__, static_folder=ROOT / "static")  # the chapters' stylesheet

    def slot_or_404(number):
        if number not in hub.slots:
            abort(404, f"There is no chapter {number}.")
        return hub.slots[number]

    def running_or_503(number):
        slot = slot_or_404(number)
        if not slot.start():
            abort(503, f"Chapter {number} would not start: its output is in the hub's terminal.")
        return slot

    @app.get("/")
    def index():
        """The list of chapters, with live status and links."""
        return render_template("hub.html", hub=hub)

    @app.get("/api/chapters")
    def chapter_status():
        """Each chapter's status and address, polled by the list."""
        return jsonify([{"number": number, "status": slot.status, "url": url_on_this_host(slot.port)}
                        for number, slot in hub.slots.items()])

    @app.get("/chapter/<number>/")
    def changes(number):
        """What a chapter adds to the previous one: app.py and template diffs, and its README."""
        slot = slot_or_404(number)
        previous, following = hub.neighbours(number)
        diffs = {path: diff_html(previous, slot.chapter, path) for path in ("app.py", "templates/index.html")}
        return render_template("changes.html", chapter=slot.chapter, previous=previous, following=following,
                               diffs=diffs, readme=slot.chapter.readme_html())

    @app.get("/chapter/<number>/open")
    def open_chapter(number):
        """Send the browser to the chapter, starting it first if it is not running."""
        return redirect(url_on_this_host(running_or_503(number).port))

    @app.get("/chapter/<number>/pair")
    def pair(number):
        """The chapter twice, side by side: window A and window B for two-window demos."""
        slot = running_or_503(number)
        return render_template("pair.html", chapter=slot.chapter, url=url_on_this_host(slot.port))

    return app


def serve(hub):
    """Serve the hub until Ctrl-C (or SIGTERM), then stop every chapter."""
    server = make_server(hub.host, hub.port, create_app(hub), threaded=True)  # fails before any chapter starts
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a log line per status poll
    # Ctrl-C and `kill` both stop the chapters, even if the hub was started with SIGINT ignored (as a shell's
    # `&` does): the chapters would inherit that, and ChapterServer stops them with SIGINT.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    hub.start_all()
    if hub.host == LOCAL:
        print(f"Classroom hub: http://{LOCAL}:{hub.port}/  (Ctrl-C stops it and every chapter)", flush=True)
    else:
        print("LAN mode: the hub and every chapter listen on all interfaces, debugger off.\n"
              "WARNING: anyone on this network can open them. Students open:", flush=True)
        for address in lan_addresses() or ["<this machine's address>"]:
            print(f"  http://{address}:{hub.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("hub: stopping every chapter", file=sys.stderr, flush=True)
        hub.stop_all()
