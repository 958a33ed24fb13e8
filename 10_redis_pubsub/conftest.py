"""Chapter 10's own fixtures: a real Redis, two server processes sharing it, logged-in clients, nginx."""
import itertools
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
import socketio

from groundwork.redis_server import PrivateRedis
from tutorial import ASYNC_MODES
from tutorial.servers import ChapterServer, Nginx
from tutorial.testing import until

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # the chapter's own modules import by name, as they do when it runs from here
import notification_store  # noqa: E402

SECRET_KEY = "shared-by-both-processes"  # both processes must sign and read the same session cookies
_names = itertools.count()


@pytest.fixture(scope="session")
def redis_url():
    """One real Redis for the session: REDIS_URL if set, else a private redis-server.

    Its users date from an hour ago: on a Redis that just got its first users (as after a restart
    empty), an unknown recipient is answered "try again" for a few seconds, not "nobody called…".
    """
    private = None if os.environ.get("REDIS_URL") else PrivateRedis().start()
    url = os.environ.get("REDIS_URL") or private.url
    with redis.Redis.from_url(url) as r:
        r.set("users:since", int(time.time()) - 3600)
    yield url
    if private is not None:
        private.remove()


@pytest.fixture
def durable_redis():
    """A private Redis of this test's own, which the test may stop and restart with its data."""
    private = PrivateRedis(durable=True).start()
    yield private
    private.remove()


@pytest.fixture
def name():
    """Make user names no other test uses, so tests sharing one Redis never see each other's notifications."""
    return lambda base: f"{base}{os.getpid()}x{next(_names)}"


@pytest.fixture
def make_app(chapter, redis_url):
    """Create the chapter's Flask app for in-process tests (the session's Redis unless given); stop its task after."""
    apps = []

    def make_app(url=redis_url, listening=True):
        """The app; unless ``listening=False``, once its subscriber listens (else a first doorbell rings unheard)."""
        apps.append(chapter.create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test", REDIS_URL=url,
                                       MESSAGE_QUEUE=False))
        if listening:
            until(apps[-1].extensions["forwarding"].is_set, what="the app's subscriber listening")
        return apps[-1]

    yield make_app
    for app in apps:
        app.extensions["stop_forwarding"].set()


@pytest.fixture
def app(make_app):
    """The chapter's Flask app on the session's Redis, configured for in-process tests."""
    return make_app()


@pytest.fixture
def log_in(chapter, app):
    """Log a user in over HTTP, then connect Flask-SocketIO's test client with that session cookie."""
    clients = []

    def log_in(user, auth=None):
        """A connected test client of ``user``."""
        http = app.test_client()
        assert http.post("/login", data={"username": user}).status_code == 302
        sio = chapter.socketio.test_client(app, flask_test_client=http, auth=auth)
        clients.append(sio)
        return sio

    yield log_in
    for sio in clients:
        if sio.is_connected():
            sio.disconnect()


def run_servers(count, async_mode, redis_url, started):
    """Start ``count`` processes of app.py sharing one Redis and one secret key; add them to ``started``."""
    env = {"REDIS_URL": redis_url, "FLASK_SECRET_KEY": SECRET_KEY}
    for _ in range(count):
        server = ChapterServer(HERE.name, async_mode, env=env)
        started.append(server)
        server.start()
    return started[-count:]


@pytest.fixture(scope="module", params=ASYNC_MODES)
def servers(request, redis_url):
    """Two processes of app.py on two ports, sharing the session's Redis, once per async mode."""
    started = []
    try:
        yield run_servers(2, request.param, redis_url, started)
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def start_servers():
    """Start processes of app.py on a Redis of the test's choosing; they stop after the test."""
    started = []
    yield lambda count, async_mode, redis_url: run_servers(count, async_mode, redis_url, started)
    for server in started:
        server.stop()


def session_cookie(url, user):
    """Log ``user`` in through the login form and return its signed session cookie, as a Cookie header."""
    response = requests.post(f"{url}/login", data={"username": user}, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return "; ".join(f"{name}={value}" for name, value in response.cookies.items())


@pytest.fixture
def connect():
    """Connect real Socket.IO clients over WebSocket as a logged-in user, to a given server."""
    clients = []

    def connect(server, user, auth=None):
        sio = socketio.SimpleClient()
        sio.connect(server.url, headers={"Cookie": session_cookie(server.url, user)}, auth=auth,
                    transports=["websocket"], wait_timeout=5)
        clients.append(sio)
        return sio

    yield connect
    for sio in clients:
        sio.disconnect()


@pytest.fixture
def log_in_over_http():
    """Log a user in through the login form without connecting: afterwards they are known, and offline."""
    return lambda server, user: session_cookie(server.url, user)


@pytest.fixture
def notify(redis_url):
    """Notify a user as any Redis client can, through the store (publish.py without its process)."""
    r = notification_store.connect(redis_url)
    yield lambda to, text: notification_store.store(r, to, "tester", text, secrets.token_hex(8), limit=None)
    r.close()


@pytest.fixture
def publish(redis_url):
    """Run ``python publish.py ARGS`` against a Redis (the session's unless given)."""
    def publish(*args, url=redis_url):
        """The finished ``publish.py`` process."""
        return subprocess.run([sys.executable, "publish.py", *args], cwd=HERE, env={**os.environ, "REDIS_URL": url},
                              capture_output=True, text=True, timeout=30)
    return publish


@pytest.fixture(scope="module")
def nginx(servers):
    """nginx in front of the two server processes, on one address."""
    proxy = Nginx([server.url.removeprefix("http://") for server in servers])
    try:
        yield proxy.start()
    finally:
        proxy.stop()


@pytest.fixture
def open_page(local_pages):
    """Open the page at a URL as a logged-in user, each call in a fresh browser context.

    The root harness's checks, for several local addresses (two processes, nginx).
    """
    pages = local_pages("http://127.0.0.1:")

    def open_page(url, user):
        page = pages.open(url)
        page.fill("#username", user)
        page.click("#login button")
        page.wait_for_function(
            "() => typeof socket !== 'undefined' && socket.io.engine?.transport.name === 'websocket'", timeout=5000)
        return page

    return open_page
