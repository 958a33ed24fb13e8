"""Chapter 06's own fixtures: clients that connect as a named user, at each level."""
import pytest
from playwright.sync_api import expect


@pytest.fixture
def sign_in(chapter, app):
    """Connect in-process test clients as named users, their welcome events already read."""
    clients = []

    def sign_in(username):
        client = chapter.socketio.test_client(app, auth={"username": username})
        assert client.is_connected(), f"{username} was refused"
        client.get_received()
        clients.append(client)
        return client

    yield sign_in
    for client in clients:
        if client.is_connected():
            client.disconnect()


@pytest.fixture
def log_in(connect):
    """Connect real clients to the live server as named users, their welcome events already read."""

    def log_in(username):
        sio = connect(auth={"username": username})
        assert [sio.receive(timeout=5)[0] for _ in range(2)] == ["signed_in", "rooms"]
        return sio

    return log_in


@pytest.fixture
def page_as(open_page):
    """Open the page in a fresh browser context and connect it as a named user."""

    def page_as(username):
        page = open_page()
        page.fill("#username", username)
        page.click("#sign-in button")
        expect(page.locator("#status")).to_contain_text(f"connected as {username} (sid ")
        return page

    return page_as
