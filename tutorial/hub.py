"""The classroom hub: every chapter as its own server, and one page to run the class from.

The hub is a small Flask app (no Socket.IO: the page polls a JSON status, and each chapter's
log streams as server-sent events). It starts every chapter at once, in the background, each
as ``python app.py`` on its own port (through ``ChapterServer``), so a click never waits for a
start; the instructor stops and restarts each from its page (a page only reads: no GET starts
anything). It keeps each chapter's output and shows it live. For a chapter with Redis (chapter 10)
the hub runs that Redis itself, so it can stop and start it for the outage demo, and a second
server process on it. Stopping the hub stops them all.

On a classroom network (``--lan``) everyone reads the chapters, their logs and READMEs; only the
instructor (this machine, or a browser holding the key the hub prints) has the buttons and sees the
secrets (Redis's password, the Admin UI's, this machine's paths). The hub answers only to the host
names it serves, so a page of another site made to resolve to this machine (DNS rebinding) gets 400.
"""
import ast
import difflib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlencode, urlsplit

import psutil
from flask import Flask, Response, abort, jsonify, redirect, render_template, request, url_for
from flask_babel import Babel, gettext
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer
from werkzeug.serving import make_server

from groundwork.redis_server import PrivateRedis

from . import CHAPTERS, ROOT, exercises
from .servers import ChapterServer, free_port

# The docstring every chapter's app.py opens with (CONTRIBUTING.md): "NN · Title: summary (notes: 中文)."
DOCSTRING = re.compile(r"\d+ · (?P<title>[^:]+): (?P<summary>.+) \(notes: (?P<notes_title>.+)\)\.?", re.S)
# Raw HTML in a README stays text: a README is content, never markup that runs in the hub.
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
LOCAL, ALL_INTERFACES = "127.0.0.1", "0.0.0.0"
# A chapter run alone listens on 5000 (its second server, in chapter 10's README, on 5001).
ALONE_PORT = re.compile(r"(?:\b127\.0\.0\.1|\blocalhost|(?<=\s)):(500[01])\b")
# A line that starts a chapter by hand keeps its ports: it runs the chapter alone, beside the hub.
STARTS_A_CHAPTER = re.compile(r"make run|app\.py")
# What README links may open through the hub: the repository's text files, never a dot folder, the
# venv, node_modules or a chapter's instance folder (its secret key).
SHOWN_FILES = {".md", ".py", ".conf", ".html", ".css", ".txt", ".toml", ".in", ".json", ".cfg", ".ini"}
HIDDEN_FOLDERS = {"instance", "node_modules", "__pycache__"}
ADMIN_USER = "admin"
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
SECOND_COOKIE = "session_b"  # the second server's session cookie: one browser, two users (see pair.html)
# The instructor's browser on another machine holds the hub's instructor key here, once it opened the link the hub
# printed in its terminal (on the hub's own machine nothing is needed).
INSTRUCTOR_COOKIE = "hub_instructor"
# Werkzeug's warning, printed by every chapter run in threading mode: the hub's log view explains it under the line.
DEVELOPMENT_SERVER_WARNING = re.compile(r"WARNING: This is a development server")
# The hub speaks English and Simplified Chinese: as a browser and a link name them -> as Babel names the catalogue
# (Hans: the Simplified script). Flask-Babel rather than a dictionary of our own: its catalogue
# (translations/zh_Hans_CN/LC_MESSAGES/messages.po) is the file translators and their tools know, `pybabel` finds
# the texts in the code and templates (`make messages`) and marks what changed since as fuzzy, and its checks
# fail the suite on a missing, fuzzy or broken translation (tests/test_hub_languages.py).
LANGUAGES = {"en": "en", "zh-CN": "zh_Hans_CN"}
LANGUAGE_COOKIE = "hub_language"
# A page's Chinese twin: README.md's is README.zh-CN.md (CONTRIBUTING.md, "Chinese twins").
TWIN_SUFFIX = ".zh-CN.md"


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

    @property
    def uses_redis(self):
        """Whether the chapter needs a Redis (it starts a private one when REDIS_URL is unset)."""
        return "REDIS_URL" in self.source("app.py")

    @property
    def instrumented(self):
        """Whether the chapter serves the Socket.IO Admin UI when given FLASK_ADMIN_PASSWORD."""
        return "instrument(" in self.source("app.py")


def diff_html(old, new, path):
    """``path`` of chapter ``old`` (or nothing) against chapter ``new``, as highlighted, escaped HTML."""
    before = old.source(path).splitlines() if old else []
    lines = list(difflib.unified_diff(before, new.source(path).splitlines(), lineterm=""))
    # Skip the "---"/"+++" file headers: the page names the files, and "+++" would look like an added line.
    return highlight("\n".join(lines[2:]) + "\n", DiffLexer(), HtmlFormatter()) if lines else None


def markdown_html(path, ports, here=None):
    """The Markdown file ``path`` as HTML for the hub: relative links opened through the hub, a chapter's ports
    made real.

    ``ports`` maps the ports a README gives for a chapter run alone ("5000", "5001") to the hub's; ``here``
    is the hub's address showing it, where its "English | 中文" line switches the language.
    """
    def on_hub(text):
        return "\n".join(line if STARTS_A_CHAPTER.search(line) else
                         ALONE_PORT.sub(lambda m: m[0].replace(m[1], ports.get(m[1], m[1])), line)
                         for line in text.split("\n"))

    tokens = MARKDOWN.parse(path.read_text(encoding="utf-8"))
    for token in tokens:
        if token.type in ("fence", "code_block"):
            token.content = on_hub(token.content)
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                child.content = on_hub(child.content)
            elif child.type == "link_open":
                child.attrSet("href", file_link(path, child.attrGet("href"), here))
    return MARKDOWN.renderer.render(tokens, MARKDOWN.options, {})


def file_link(page, href, here=None):
    """A link of the Markdown file ``page`` (``nginx.conf``, ``../bench/README.md#x``) as the hub's /file/ address.

    A link to a page or its Chinese twin opens that page in the reader's language (a twin links to the twins,
    an English README to the English pages: both lead to the same address). The "English | 中文" line, a link
    to ``page`` itself or its twin, switches the language of ``here``, the hub's address showing it.
    """
    if not href or urlsplit(href).scheme or href.startswith(("#", "/")):
        return href
    path, _, fragment = href.partition("#")
    target = (page.parent / path).resolve()
    if not target.is_relative_to(ROOT):
        return href
    if here and not fragment and english(target) == english(page.resolve()):
        return switched(here, "zh-CN" if target.name.endswith(TWIN_SUFFIX) else "en")
    return f"/file/{english(target).relative_to(ROOT).as_posix()}" + (f"#{fragment}" if fragment else "")


def english(path):
    """The English page of ``path``: itself, or the page it is the Chinese twin of."""
    return path.with_name(path.name.removesuffix(TWIN_SUFFIX) + ".md") if path.name.endswith(TWIN_SUFFIX) else path


def in_language(path, language):
    """The English page ``path`` in ``language``: its twin, or itself where the twin is still to be written."""
    twin = path.with_name(path.name.removesuffix(".md") + TWIN_SUFFIX)
    return twin if language == "zh-CN" and path.suffix == ".md" and twin.is_file() else path


def tagline(chapter):
    """The chapter's summary (its docstring's) in the reader's language: the catalogue has each one, found there by
    ``chapter_summaries``. A plain string, escaped like any text: a template's ``_()`` would mark it as HTML."""
    return gettext(chapter.summary) if chapter.summary else ""  # (gettext("") is the catalogue's header)


def chapter_summaries(fileobj, keywords, comment_tags, options):
    """A Babel extractor (tutorial/babel.cfg): every chapter's summary, as the texts of ``tutorial/__init__.py``, which
    finds the chapters. ``make messages`` then puts them in the catalogue beside the hub's own texts."""
    for summary in filter(None, (Chapter.read(folder).summary for folder in CHAPTERS)):
        yield 1, None, summary, []


def exercise_titles(fileobj, keywords, comment_tags, options):
    """A Babel extractor (tutorial/babel.cfg): the title of every chapter's "Now you try" exercises, as the texts of
    ``tutorial/exercises/__init__.py``, which registers them."""
    for folder in CHAPTERS:
        for exercise in exercises.exercises_of(folder):
            yield 1, None, exercise.title, []


def untranslated(path):
    """Whether the Markdown page ``path`` is shown in English to a reader who chose another language."""
    return readers_language() != "en" and path.suffix == ".md" and not path.name.endswith(TWIN_SUFFIX)


def switched(address, language):
    """``address`` (a path, perhaps with a #fragment) asking the hub to switch to ``language`` there."""
    path, _, fragment = address.partition("#")
    return f"{path}?lang={language}" + (f"#{fragment}" if fragment else "")


def readers_language():
    """The reader's language: the one chosen on the hub (a cookie), else the browser's preference, else English."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="en")


def shown_file(path):
    """The repository file at ``path`` if the hub may show it (else None): text, and nothing private, judged both
    by how the path is spelled and by where it leads (a link in a shown folder may point into .venv)."""
    try:
        file = (ROOT / path).resolve()
        if not file.is_relative_to(ROOT) or not file.is_file() or file.suffix not in SHOWN_FILES:
            return None
    except (OSError, ValueError):  # a NUL byte, a name longer than the system allows
        return None
    parts = PurePosixPath(path).parts + file.relative_to(ROOT).parts
    if any(part.startswith(".") or part in HIDDEN_FOLDERS for part in parts):
        return None
    return file


def pick_port(host, preferred):
    """``preferred`` if it is free (stable links across hub restarts), otherwise any free port."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, preferred))
            return preferred
        except (OSError, OverflowError):  # busy, or past 65535
            return free_port(host)


def taken_message(port, chapter=None):
    """Why a server cannot start on ``port``, and the setting that moves it (Werkzeug's message never says)."""
    command = f"PORT={port + 100} make run" + (f" CHAPTER={chapter}" if chapter else "")
    return f"port {port} is taken (another hub, chapter or program listens there): choose another with PORT=, " \
           f"e.g. {command}"


def debug_requested(environ):
    """Whether FLASK_DEBUG would turn a chapter's debugger on (its config parses the value as JSON)."""
    return environ.get("FLASK_DEBUG", "").strip().lower() not in ("", "0", "false")


def lan_addresses():
    """This machine's IPv4 addresses on interfaces that are up, loopback excluded (read locally, no traffic)."""
    up = {name for name, stats in psutil.net_if_stats().items() if stats.isup}
    return [address.address for name, addresses in psutil.net_if_addrs().items() if name in up
            for address in addresses
            if address.family == socket.AF_INET and not address.address.startswith("127.")]


def private_redis():
    """A new, durable private Redis: stopped and started again, it keeps every notification."""
    return PrivateRedis(durable=True)


class ChapterLog:
    """A server's output as the hub keeps it: its lines in order (the last ``LIMIT``), and a wait for more."""

    LIMIT = 2000

    def __init__(self, label, echo=False):
        self.label = label
        self.echo = echo
        self.lines = []
        self.first = 0  # the number of the oldest line kept
        self._partial = b""
        self._more = threading.Condition()

    @property
    def end(self):
        return self.first + len(self.lines)

    def write(self, data, final=False):
        """Add what a server printed: complete lines now, a partial one once it ends (or ``final``)."""
        data = self._partial + data
        complete, _, self._partial = data.rpartition(b"\n") if not final else (data.rstrip(b"\n"), b"", b"")
        if not complete:
            return
        self.add(complete.decode(errors="replace").split("\n"))

    def add(self, lines):
        """Keep ``lines``, echo them to the hub's terminal if asked, and wake whoever waits for them."""
        lines = [ANSI_COLOUR.sub("", line) for line in lines]  # Werkzeug colours its warnings for a terminal
        if self.echo:
            for line in lines:
                print(f"[{self.label}] {line}", flush=True)
        with self._more:
            self.lines.extend(lines)
            if len(self.lines) > self.LIMIT:
                self.first += len(self.lines) - self.LIMIT
                del self.lines[:-self.LIMIT]
            self._more.notify_all()

    def after(self, position, timeout):
        """The lines numbered from ``position`` on, waiting up to ``timeout`` s for one; and the next position."""
        with self._more:
            self._more.wait_for(lambda: self.end > position, timeout)
            start = max(position, self.first)
            return self.lines[start - self.first:], self.end


class ChapterSlot:
    """One chapter server in the hub: its process, its port, its status and its log."""

    def __init__(self, chapter, host, preferred_port, async_mode, env, label=None, echo=False):
        self.chapter = chapter
        self.host = host
        self.preferred_port = preferred_port
        self.port = preferred_port
        self.async_mode = async_mode
        self.env = env
        self.server = None
        self.starting = False
        self.halted = False  # stopped from the page: "stopped", not "failed"
        self.closed = False
        self.log = ChapterLog(label or chapter.number, echo)
        self._lock = threading.Lock()  # one start or stop at a time; stop waits for a start to finish

    @property
    def status(self):
        """stopped, starting, running, or failed (it would not start, or exited)."""
        if self.starting:
            return "starting"
        if self.server is None or self.closed or self.halted:
            return "stopped"
        return "running" if self.server.process.poll() is None else "failed"

    def start(self):
        """Start the server unless it runs already; True once it serves."""
        with self._lock:
            if self.closed or self.status == "running":
                return self.status == "running"
            if self.server is not None:
                self.server.stop()  # it failed: release its log before starting again
            self.starting, self.halted = True, False  # first: the status must not look at a server not started
            self.port = pick_port(self.host, self.preferred_port)
            self.log.add([f"--- hub: starting {self.chapter.folder.name} on port {self.port} ---"])
            self.server = ChapterServer(self.chapter.folder.name, self.async_mode, port=self.port, env=self.env)
            try:
                self.server.start()
            except (RuntimeError, TimeoutError) as error:
                self.server.stop()
                print(f"hub: {error}", file=sys.stderr)
            finally:
                self.starting = False
            return self.status == "running"

    def halt(self):
        """Stop the server from the page (Ctrl-C to its process group); opening it starts it again."""
        with self._lock:
            self.halted = True
            if self.server is not None:
                self.server.stop()
        self.log.add([f"--- hub: stopped {self.chapter.folder.name} ---"])

    def restart(self):
        """Stop the server and start it again (on the same port when it is free)."""
        self.halt()
        return self.start()

    def stop(self):
        """Stop the server for good: Ctrl-C to its process group, then kill if it lingers."""
        with self._lock:
            self.closed = True
            if self.server is not None:
                self.server.stop()

    def follow(self, stopping):
        """Copy the server's output into the log as it is written, until ``stopping`` is set (a thread)."""
        server, offset = None, 0
        while True:
            if self.server is not server:  # (re)started: a new log file
                if server is not None:
                    self.log.write(server.output_after(offset), final=True)
                server, offset = self.server, 0
            if server is not None:
                data = server.output_after(offset)
                offset += len(data)
                self.log.write(data)
            if stopping.wait(0.1):  # not synchronisation: the pause between two looks at the file
                return


class Hub:
    """Every chapter's slot, started together and stopped together; chapter 10's Redis and second server."""

    def __init__(self, chapters, host=LOCAL, port=5000, async_mode="threading", echo=False):
        # The hub decides where chapters listen; in LAN mode their debugger is off whatever the environment says.
        # It gives them no session key: each signs with its own, as when run alone (a browser sends a cookie to
        # every port of a host, so one key for all would let one chapter's login open a session in another).
        env = {"HOST": host, **({"FLASK_DEBUG": "0"} if host != LOCAL else {})}
        # The Socket.IO Admin UI's password, shown on the hub's pages to the instructor only.
        self.admin_password = os.environ.get("FLASK_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        env["FLASK_ADMIN_PASSWORD"] = self.admin_password
        # What makes a browser on another machine the instructor's (INSTRUCTOR_COOKIE): printed in LAN mode.
        self.instructor_key = secrets.token_urlsafe(16)
        self.host, self.port, self.async_mode, self.chapter_env, self.echo = host, port, async_mode, env, echo
        self.chapters = [Chapter.read(folder) for folder in chapters]
        self.redis = {}  # chapter number -> its PrivateRedis, made when the hub starts
        self.slots = {}  # chapter number -> the slot of its server
        self.second_servers = {}  # chapter number -> the slot of its second server process (chapter 10)
        for chapter in self.chapters:
            number, chapter_port = chapter.number, port + int(chapter.number)
            self.slots[number] = ChapterSlot(chapter, host, chapter_port, async_mode, dict(env), echo=echo)
            if chapter.uses_redis:  # a second process on the same Redis, with its own session cookie
                self.second_servers[number] = ChapterSlot(chapter, host, chapter_port + 100, async_mode,
                                                          {**env, "FLASK_SESSION_COOKIE_NAME": SECOND_COOKIE},
                                                          label=f"{number}b", echo=echo)
        self.stopping = threading.Event()

    def all_slots(self):
        return [*self.slots.values(), *self.second_servers.values()]

    def start_all(self):
        """Start every chapter and second server at once, in the background (Redis first): the hub page answers
        meanwhile, and no page needs to start anything (a GET changes nothing)."""
        for slot in self.all_slots():
            threading.Thread(target=slot.follow, args=(self.stopping,), name=f"log {slot.log.label}",
                             daemon=True).start()
        for number, slot in self.slots.items():
            if slot.chapter.uses_redis:
                self.redis[number] = private_redis().start()
                for chapter_slot in (slot, self.second_servers[number]):
                    chapter_slot.env["REDIS_URL"] = self.redis[number].url
        for slot in self.all_slots():
            threading.Thread(target=slot.start, name=f"start {slot.log.label}", daemon=True).start()

    def stop_all(self):
        """Stop every chapter, in parallel, then their Redis; returns once all are gone."""
        with ThreadPoolExecutor() as pool:
            list(pool.map(ChapterSlot.stop, self.all_slots()))
        for redis in self.redis.values():
            redis.remove()
        self.stopping.set()

    def neighbours(self, number):
        """The chapter before and after ``number`` in the list (or None)."""
        numbers = list(self.slots)
        index = numbers.index(number)
        before = self.slots[numbers[index - 1]].chapter if index > 0 else None
        after = self.slots[numbers[index + 1]].chapter if index + 1 < len(numbers) else None
        return before, after

    def redis_status(self, number):
        """running or stopped: the chapter's Redis, as the outage demo left it."""
        process = self.redis[number].process
        return "running" if process is not None and process.poll() is None else "stopped"


def url_on_this_host(port):
    """A chapter's address on the host name the browser reached the hub by (127.0.0.1, or the LAN address)."""
    host = urlsplit(request.host_url).hostname
    return f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}/"


def from_this_machine(address):
    """Whether a request from ``address`` comes from this machine: loopback, or one of its own addresses."""
    try:
        return ipaddress.ip_address(address).is_loopback or address in lan_addresses()
    except ValueError:  # no address (not over TCP)
        return False


def served_names(hub):
    """The host names the hub answers to: this machine's own, and in LAN mode its addresses and name on the network.
    A request naming another host is refused (400), whatever route it asks for: a web page whose name was made to
    resolve to this machine (DNS rebinding) reaches the hub by that name, and is refused."""
    names = [LOCAL, "localhost"]
    if hub.host != LOCAL:
        name = socket.gethostname().lower()  # as browsers send it
        names += [*lan_addresses(), name, f"{name}.local"]
    return names


def from_the_instructor(hub):
    """Whether this request is the instructor's: from this machine, or from a browser that opened the instructor's
    link the hub printed (its key in a cookie). Students on the network see the chapters, change nothing."""
    return from_this_machine(request.remote_addr) or hmac.compare_digest(
        request.cookies.get(INSTRUCTOR_COOKIE, "").encode(), hub.instructor_key.encode())


def create_app(hub):
    """The hub's pages: the list, a chapter's page (controls, log, changes, README), A | B; JSON and streams."""
    app = Flask(__name__, static_folder=ROOT / "static")  # the chapters' stylesheet
    app.config["TRUSTED_HOSTS"] = served_names(hub)
    Babel(app, locale_selector=lambda: LANGUAGES[readers_language()])

    def slot_or_404(number):
        if number not in hub.slots:
            abort(404, gettext("There is no chapter %(number)s.", number=number))
        return hub.slots[number]

    def second_or_404(number):
        slot_or_404(number)
        if number not in hub.second_servers:
            abort(404, gettext("Chapter %(number)s has no second server.", number=number))
        return hub.second_servers[number]

    @app.before_request
    def choose_language():
        """``?lang=zh-CN`` (the toggle, a README's "English | 中文" line): remember it, then show the page."""
        chosen = request.args.get("lang")
        if chosen is None or request.method != "GET" or request.url_rule is None:  # (never "//elsewhere/?lang=")
            return None
        if chosen not in LANGUAGES:
            abort(400, gettext("The hub speaks %(languages)s.", languages=", ".join(LANGUAGES)))
        rest = urlencode([(key, value) for key, value in request.args.items(multi=True) if key != "lang"])
        response = redirect(request.path + (f"?{rest}" if rest else ""))  # a reload asks nothing again
        response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=365 * 24 * 3600, httponly=True, samesite="Lax")
        return response

    @app.context_processor
    def in_the_readers_language():
        """The pages' language (``<html lang>``, the toggle), the chapters' taglines and the words for a status in it
        (the JSON and the CSS classes keep the English word); whether the reader is the instructor."""
        statuses = {"running": gettext("running"), "stopped": gettext("stopped"), "starting": gettext("starting"),
                    "failed": gettext("failed"), "hub not answering": gettext("hub not answering"),
                    "live": gettext("live")}
        return {"language": readers_language(), "statuses": statuses, "tagline": tagline,
                "instructor": from_the_instructor(hub)}

    @app.before_request
    def instructors_actions():
        """Refuse a POST (every button: stop, restart, Redis, second server) unless the instructor's own hub page
        sent it: only the hub's script sends X-Hub, which a page of another site cannot add without asking."""
        if request.method != "POST":
            return None
        if request.headers.get("X-Hub") != "1":
            abort(403, gettext("The hub's buttons send X-Hub: 1."))
        if not from_the_instructor(hub):
            abort(403, gettext("The hub's buttons are the instructor's: on the machine running the hub, or in a "
                               "browser that opened the instructor's link the hub printed."))

    def details(number):
        """What the pages show about a chapter: status and address; Redis, second server, Admin UI; and to the
        instructor only, the secrets (Redis's URL with its password, the Publish command with this machine's
        paths)."""
        slot = hub.slots[number]
        url = url_on_this_host(slot.port)
        info = {"number": number, "status": slot.status, "url": url}
        if slot.chapter.instrumented:
            info["admin_url"] = f"{url}static/vendor/admin-ui/index.html"
        if number in hub.redis:  # once the hub has started it
            second = hub.second_servers[number]
            info.update(redis_status=hub.redis_status(number), second_status=second.status,
                        second_url=url_on_this_host(second.port))
            if from_the_instructor(hub):
                info.update(redis_url=hub.redis[number].url,
                            publish=f"cd {slot.chapter.folder} && REDIS_URL={hub.redis[number].url} "
                                    f"{sys.executable} publish.py --to bob \"hello from the shell\"")
        return info

    @app.get("/")
    def index():
        """The list of chapters, with live status, links and buttons."""
        return render_template("hub.html", hub=hub)

    @app.get("/api/chapters")
    def chapter_status():
        """Each chapter's status and address, polled by the pages."""
        return jsonify([details(number) for number in hub.slots])

    @app.post("/chapter/<number>/<action>")
    def act(number, action):
        """A chapter's buttons: start, stop or restart its server."""
        slot = slot_or_404(number)
        if action not in ("start", "stop", "restart"):
            abort(404)
        {"start": slot.start, "stop": slot.halt, "restart": slot.restart}[action]()
        return jsonify(details(number))

    @app.post("/chapter/<number>/second/<action>")
    def act_on_second(number, action):
        """Start or stop chapter 10's second server process (on the same Redis)."""
        slot = second_or_404(number)
        if action not in ("start", "stop"):
            abort(404)
        {"start": slot.start, "stop": slot.halt}[action]()
        return jsonify(details(number))

    @app.post("/chapter/<number>/redis/<action>")
    def act_on_redis(number, action):
        """Stop or start the chapter's Redis: the outage demo (its data is kept on disk meanwhile)."""
        slot_or_404(number)
        if number not in hub.redis or action not in ("start", "stop"):  # (or not yet started)
            abort(404)
        redis = hub.redis[number]
        if action == "stop":
            redis.stop()
        elif hub.redis_status(number) == "stopped":
            redis.start()
        hub.slots[number].log.add([f"--- hub: Redis {'stopped' if action == 'stop' else 'started'} ---"])
        return jsonify(details(number))

    @app.post("/chapter/<number>/check/<int:exercise>")
    def check_exercise(number, exercise):
        """Check one of the chapter's "Now you try" exercises against its app.py, as ``make check`` does: in a
        process of its own, so that the chapter's code never runs inside the hub."""
        slot = slot_or_404(number)
        if exercise not in {e.number for e in exercises.exercises_of(slot.chapter.folder)}:
            abort(404)
        checked = subprocess.run([sys.executable, "-m", "tutorial", "check", number, "--exercise", str(exercise)],
                                 cwd=ROOT, capture_output=True, text=True, timeout=120)
        return jsonify({"report": checked.stdout.strip() or checked.stderr.strip()})

    @app.get("/chapter/<number>/log")
    def log(number):
        """The chapter's output as server-sent events: the last lines kept, then each line as it is written."""
        slot = second_or_404(number) if request.args.get("server") == "second" else slot_or_404(number)
        # A browser reconnecting says where it was (Last-Event-ID): it gets only what it missed.
        position = int(request.headers.get("Last-Event-ID", "0")) if request.headers.get(
            "Last-Event-ID", "").isdigit() else 0
        # In the reader's language, under Werkzeug's warning: why a chapter says so, and that nothing is wrong.
        note = gettext("↑ hub: expected. The chapters run on Werkzeug, the development server that comes with "
                       "Flask, which warns so (also the line \"Werkzeug appears to be used in a production "
                       "deployment\"); for real, chapter 10's README runs gunicorn behind nginx.")

        def stream():
            nonlocal position
            while not hub.stopping.is_set():
                lines, position = slot.log.after(position, timeout=5)
                lines = [shown for line in lines
                         for shown in ((line, note) if DEVELOPMENT_SERVER_WARNING.search(line) else (line,))]
                if lines:
                    yield "".join(f"data: {json.dumps(line)}\n\n" for line in lines[:-1]) + \
                        f"id: {position}\ndata: {json.dumps(lines[-1])}\n\n"
                else:  # a heartbeat: writing is how the server notices a page has gone
                    yield ": quiet\n\n"

        return Response(stream(), mimetype="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get("/chapter/<number>/")
    def changes(number):
        """A chapter's page: controls and live log, what it adds to the previous chapter, its README."""
        slot = slot_or_404(number)
        previous, following = hub.neighbours(number)
        chapter = slot.chapter
        diffs = {path: diff_html(previous, slot.chapter, path) for path in ("app.py", "templates/index.html")}
        ports = {"5000": str(slot.port),
                 **({"5001": str(hub.second_servers[number].port)} if number in hub.second_servers else {})}
        shown = in_language(chapter.folder / "README.md", readers_language())
        here = url_for("changes", number=number, _anchor="readme")
        return render_template("changes.html", hub=hub, chapter=slot.chapter, previous=previous, following=following,
                               exercises=[replace(exercise, title=gettext(exercise.title))
                                          for exercise in exercises.exercises_of(chapter.folder)],
                               diffs=diffs, info=details(number), readme=shown,
                               readme_html=markdown_html(shown, ports, here) if shown.is_file() else None,
                               untranslated=untranslated(shown))

    @app.get("/chapter/<number>/open")
    def open_chapter(number):
        """Send the browser to the chapter if it runs, else to its page on the hub (its status, log and buttons).
        A GET starts nothing: any web page's <img> can send one."""
        slot = slot_or_404(number)
        return redirect(url_on_this_host(slot.port) if slot.status == "running" else url_for("changes", number=number))

    @app.get("/chapter/<number>/pair")
    def pair(number):
        """The chapter twice, side by side, beside its live log: windows A and B for two-window demos.

        With a second server (chapter 10), B is that process: its own session cookie makes B another user.
        """
        slot = slot_or_404(number)
        second = hub.second_servers.get(number)
        return render_template("pair.html", chapter=slot.chapter, info=details(number), second=second is not None,
                               url_a=url_on_this_host(slot.port), url_b=url_on_this_host((second or slot).port),
                               hub=hub)

    @app.get("/instructor")
    def instructor():
        """The link the hub prints for the instructor's browser on another machine: with the right key, that browser
        gets the instructor's buttons and secrets (a cookie), then the hub's list."""
        if not hmac.compare_digest(request.args.get("key", "").encode(), hub.instructor_key.encode()):
            abort(403, gettext("This is not the instructor's link the hub printed."))
        response = redirect(url_for("index"))
        response.set_cookie(INSTRUCTOR_COOKIE, hub.instructor_key, httponly=True, samesite="Strict")
        return response

    @app.get("/file/<path:path>")
    def file(path):
        """A repository file a README links to: Markdown rendered, anything else as text."""
        found = shown_file(path)
        if found is None:
            abort(404, gettext("The hub shows the repository's text files only."))
        shown = in_language(found, readers_language())  # a twin asked for by name stays itself
        html = markdown_html(shown, {}, url_for("file", path=english(found).relative_to(ROOT).as_posix())) \
            if shown.suffix == ".md" else None
        return render_template("file.html", path=shown.relative_to(ROOT).as_posix(), html=html,
                               text=shown.read_text(encoding="utf-8"),
                               untranslated=html is not None and untranslated(shown))

    return app


def serve(hub):
    """Serve the hub until Ctrl-C (or SIGTERM), then stop every chapter."""
    if pick_port(hub.host, hub.port) != hub.port:
        raise ValueError(taken_message(hub.port))
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
        addresses = lan_addresses() or ["<this machine's address>"]
        print("LAN mode: the hub and every chapter listen on all interfaces, debugger off.\n"
              "WARNING: anyone on this network can open them (the chapters, their logs and READMEs; the hub's\n"
              "buttons and secrets only on this machine). Students open:", flush=True)
        for address in addresses:
            print(f"  http://{address}:{hub.port}/", flush=True)
        print(f"Instructor on another machine: open this link once (it is the key to the buttons, keep it off the "
              f"projector):\n  http://{addresses[0]}:{hub.port}/instructor?key={hub.instructor_key}", flush=True)
    print(f"Socket.IO Admin UI (chapters 09, 10): user {ADMIN_USER}, password {hub.admin_password}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print("hub: stopping every chapter", file=sys.stderr, flush=True)
        hub.stop_all()
