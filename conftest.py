"""The test harness every chapter shares: in-process, live server, browser.

A chapter's tests live in its folder and ask for fixtures by level:

- in-process: ``chapter`` (its ``app.py``, freshly imported), ``app`` and ``client``
  (Flask-SocketIO's test client, threading mode inside this process);
- live: ``server`` (``app.py`` as a real process, once per async mode) and
  ``connect`` (real ``socketio.SimpleClient`` connections over WebSocket only);
- browser: ``open_page`` (the page in headless Chromium, allowed to reach only
  the local server, and failing the test unless Socket.IO upgraded to WebSocket),
  and ``local_pages`` for pages of several local servers.
"""
import contextlib
import functools
import os
import shutil
import sys

import pytest
import socketio
import websocket

from tutorial import ASYNC_MODES
from tutorial.servers import ChapterServer
from tutorial.testing import load_chapter, until

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    # Without these Chromium phones home, and this machine's closed network refuses it.
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
]

# A client's disconnect() sends Engine.IO's CLOSE packet, then websocket-client's close()
# waits up to 3 s for the server's close frame, which python-engineio's reader thread
# has often consumed already (seen against Werkzeug): a wait for nothing, per client.
websocket.WebSocket.close = functools.partialmethod(websocket.WebSocket.close, timeout=0.2)


@pytest.fixture
def chapter(request):
    """The test's chapter ``app.py`` (or the chapter folder it is parametrised with), imported afresh."""
    module = load_chapter(getattr(request, "param", request.path.parent))
    yield module
    del sys.modules[module.__name__]


@pytest.fixture
def app(chapter):
    """The chapter's Flask app, configured for in-process tests."""
    return chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test")


@pytest.fixture
def client(chapter, app):
    """Flask-SocketIO's test client, connected to the default namespace."""
    test_client = chapter.socketio.test_client(app)
    yield test_client
    if test_client.is_connected():
        test_client.disconnect()


@pytest.fixture(scope="module", params=ASYNC_MODES)
def server(request):
    """The chapter's ``app.py`` running as a real server process, once per async mode."""
    with ChapterServer(request.path.parent.name, request.param) as running:
        yield running


@pytest.fixture
def connect(server):
    """Connect real Socket.IO clients to the live server, over WebSocket only."""
    clients = []

    def connect(namespace="/", auth=None):
        sio = socketio.SimpleClient()
        sio.connect(server.url, namespace=namespace, auth=auth, transports=["websocket"], wait_timeout=5)
        clients.append(sio)
        return sio

    yield connect
    for sio in clients:
        sio.disconnect()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium from Debian's package, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("the browser tests need Debian's chromium: run `make test`, or `apt-get install chromium`")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class LocalPages:
    """Browser pages that may reach only URLs starting with ``origin``: a classroom may be offline.

    Each ``open`` is a fresh browser context, so a different user. ``check()`` fails
    the test if a page reached elsewhere, raised a JavaScript error, or (unless opened
    with ``websocket=False``) never upgraded its Socket.IO connection to WebSocket.
    """

    def __init__(self, browser, origin):
        self.browser = browser
        self.origin = origin
        self.ws_origin = origin.replace("http://", "ws://", 1)
        self.contexts, self.foreign, self.errors, self.must_upgrade, self.upgraded = [], [], [], [], set()

    def _guard(self, route):
        if route.request.url.startswith(self.origin):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def _watch(self, page):
        page.on("pageerror", lambda error: self.errors.append(error))
        page.on("websocket", lambda ws: self._watch_websocket(page, ws))

    def _watch_websocket(self, page, ws):
        if not ws.url.startswith(self.ws_origin):
            self.foreign.append(ws.url)
        # The server's "3probe" answer is the WebSocket half of Socket.IO's upgrade.
        ws.on("framereceived", lambda payload: payload == "3probe" and self.upgraded.add(page))

    def open(self, url, websocket=True, **options):
        """A new page in a new context (Playwright's ``options``: ``locale="zh-CN"``, ``viewport``), at ``url``."""
        context = self.browser.new_context(**options)
        context.route("**/*", self._guard)
        context.on("page", self._watch)  # every page of the context, popups included
        page = context.new_page()
        page.goto(url)
        self.contexts.append(context)
        if websocket:
            self.must_upgrade.append(page)
        return page

    def check(self):
        """Close every context, then fail on what the pages did wrong."""
        def waiting():
            return [p for p in self.must_upgrade if p not in self.upgraded and not p.is_closed()]

        def all_upgraded():
            if pending := waiting():
                pending[0].wait_for_timeout(50)  # Playwright delivers frames only while it is called
            return not pending

        with contextlib.suppress(AssertionError):  # those still waiting are named below, contexts closed first
            until(all_upgraded, timeout=5)
        stuck = [p.url for p in waiting()]
        for context in self.contexts:
            context.close()
        assert not self.foreign, f"a page reached beyond {self.origin}: {self.foreign}"
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"
        assert not stuck, f"Socket.IO never upgraded to WebSocket on: {stuck}"


@pytest.fixture
def local_pages(browser):
    """Make ``LocalPages`` for an origin; all are checked when the test ends."""
    made = []

    def local_pages(origin):
        made.append(LocalPages(browser, origin))
        return made[-1]

    yield local_pages
    for pages in made:
        pages.check()


@pytest.fixture
def open_page(local_pages, server):
    """Open the chapter's page in a fresh browser context (a different user) that may reach only its server."""
    pages = local_pages(server.url + "/")
    return lambda path="/", websocket=True: pages.open(server.url + path, websocket)
