"""Chapter 01: the app is configured safely, greets every connection, and runs in both async modes."""
import json
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect

from tutorial.servers import ChapterServer

CLIENT_VERSION = json.loads((Path(__file__).parent.parent / "package-lock.json").read_text())[
    "packages"]["node_modules/socket.io-client"]["version"]


def test_secret_key_comes_from_the_environment(chapter, monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    assert chapter.create_app(ASYNC_MODE="threading").secret_key == "from-the-environment"


def test_without_a_secret_key_one_is_made_and_kept_in_the_instance_folder(chapter, monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    first = chapter.create_app(ASYNC_MODE="threading")
    second = chapter.create_app(ASYNC_MODE="threading")  # a restart: the same key, so sessions stay valid
    kept = Path(first.instance_path, "secret_key")
    assert first.secret_key == second.secret_key == kept.read_text()
    assert len(first.secret_key) == 64 and kept.stat().st_mode & 0o777 == 0o600  # readable by its owner only


def test_debug_is_off_unless_asked(chapter, monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert not chapter.create_app(ASYNC_MODE="threading").debug


def test_page_names_the_async_mode_and_client_version(app):
    page = app.test_client().get("/").get_data(as_text=True)
    assert '<b id="async-mode">threading</b>' in page
    assert f'<b id="client-version">{CLIENT_VERSION}</b>' in page
    assert "vendor/socket.io.min.js" in page


def test_server_greets_on_connect(client):
    assert client.get_received() == [{
        "name": "greeting", "namespace": "/",
        "args": [{"text": "Hello from Flask-SocketIO!", "async_mode": "threading"}],
    }]


def test_greeting_over_websocket(server, connect):
    sio = connect()
    assert sio.client.transport() == "websocket"
    greeting = {"text": "Hello from Flask-SocketIO!", "async_mode": server.async_mode}
    assert sio.receive(timeout=5) == ["greeting", greeting]


def test_listens_on_loopback_only(server):
    listening = [c.laddr for c in psutil.Process(server.process.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening == [("127.0.0.1", server.port)]


def test_stops_cleanly_on_ctrl_c(server):
    with ChapterServer("01", server.async_mode) as other:
        pid = other.process.pid
    assert other.process.returncode == 0, other.output()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_page_connects_upgrades_and_shows_the_greeting(open_page, server):
    page = open_page()
    expect(page.locator("#status")).to_contain_text("connected as ")
    expect(page.locator("#greeting")).to_have_text("Hello from Flask-SocketIO!")
    expect(page.locator("#transport")).to_contain_text("websocket")
    expect(page.locator("#async-mode")).to_have_text(server.async_mode)
    expect(page.locator("#client-version")).to_have_text(CLIENT_VERSION)
    expect(page.locator("#protocol")).to_have_text("4")


def test_notes_era_client_is_refused(server):
    """The notes' Socket.IO JS 1.3 spoke Engine.IO protocol 3; a 5.x server answers 400."""
    old_handshake = f"{server.url}/socket.io/?EIO=3&transport=polling"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(old_handshake)
    assert refused.value.code == 400
    assert b"unsupported version" in refused.value.read()


def test_other_origins_are_refused(server):
    """Flask-SocketIO accepts only pages served by this server: another site's page cannot connect."""
    handshake = urllib.request.Request(f"{server.url}/socket.io/?EIO=4&transport=polling",
                                       headers={"Origin": "http://evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(handshake)
    assert refused.value.code == 400
    assert b"Not an accepted origin" in refused.value.read()
