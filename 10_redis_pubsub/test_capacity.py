"""Chapter 10's shipped configuration holds more tabs than the defaults it replaced, and a full server says so."""
import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

import notification_store
import requests
import socketio

from tutorial.production import Cluster
from tutorial.servers import Gunicorn

# nginx's default, 512 connections, held 256 WebSockets through nginx (two connections each).
TABS = 300
BATCH = 50  # tabs opening at once: within nginx's listen backlog (511)


def log_in(url, user):
    """The session cookie the login form gives ``user`` (name=value)."""
    response = requests.post(f"{url}/login", data={"username": user}, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["Set-Cookie"].split(";")[0]


async def open_tab(url, cookie, inbox, refusals):
    """One tab over WebSocket; what it is sent lands in ``inbox``, a refusal's payload in ``refusals``."""
    tab = socketio.AsyncClient(reconnection=False)
    tab.on("notification", inbox.append)
    tab.on("connect_error", refusals.append)
    try:
        await tab.connect(url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return None
    return tab


def run_async(coroutine):
    """Run ``coroutine`` to its end on a thread of its own: Playwright's browser tests keep a loop on this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


async def until_true(check, timeout):
    """Poll ``check()`` until it is true (TimeoutError after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)  # not synchronisation: the pause between two polls


def test_more_tabs_than_nginx_held_by_default_through_the_launchers_nginx(redis_url):
    user = f"crowd{secrets.token_hex(3)}"

    async def crowd(cluster):
        cookie = log_in(cluster.url, user)
        inboxes, refusals, tabs = [[] for _ in range(TABS)], [], []
        try:
            for first in range(0, TABS, BATCH):
                tabs += await asyncio.gather(*(open_tab(cluster.url, cookie, inboxes[i], refusals)
                                               for i in range(first, min(first + BATCH, TABS))))
            assert None not in tabs and not refusals, refusals
            notification_store.store(notification_store.connect(redis_url), user, "tester", "to every tab",
                                     secrets.token_hex(8), limit=None)
            await until_true(lambda: all(inboxes), 30)  # every tab has the notification
            assert {inbox[0]["text"] for inbox in inboxes} == {"to every tab"}
        finally:
            await asyncio.gather(*(tab.disconnect() for tab in tabs if tab))

    with Cluster(3, "gevent", redis_url=redis_url, graceful_timeout=1) as cluster:
        run_async(crowd(cluster))
        assert "worker_connections are not enough" not in cluster.nginx.output()


def test_a_full_server_refuses_the_next_tab_and_says_to_try_again(redis_url):
    user = f"full{secrets.token_hex(3)}"

    async def fill(server):
        cookie = log_in(server.url, user)
        inbox, refusals = [], []
        admitted = [await open_tab(server.url, cookie, inbox, refusals) for _ in range(2)]
        assert None not in admitted and not refusals, refusals
        assert await open_tab(server.url, cookie, inbox, refusals) is None
        assert refusals == [{"message": "server full: trying again in a moment", "data": {"retry": True}}]
        await admitted.pop().disconnect()  # a tab leaves: trying again gets in, once the server has seen it go
        async with asyncio.timeout(10):
            while (tab := await open_tab(server.url, cookie, inbox, refusals)) is None:
                await asyncio.sleep(0.2)  # not synchronisation: the pause between two tries, as the page's
        await asyncio.gather(*(tab.disconnect() for tab in [*admitted, tab]))

    env = {"REDIS_URL": redis_url, "FLASK_SECRET_KEY": secrets.token_hex(16), "FLASK_MAX_CONNECTIONS": "2"}
    with Gunicorn("10", "gevent", env=env, graceful_timeout=1) as server:
        run_async(fill(server))
