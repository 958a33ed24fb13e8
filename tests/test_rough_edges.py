"""The rough edges a newcomer hit (issue 13): each one, seen by a test where a test can see it."""
import os
import re
import subprocess
import urllib.request

import pytest
from playwright.sync_api import expect

from tutorial import CHAPTERS, ROOT
from tutorial.servers import ChapterServer


@pytest.fixture
def chapter_server():
    """Start chapters as processes: ``chapter_server("09")``; all stop when the test ends."""
    started = []

    def start(number, async_mode="threading", port=None):
        started.append(ChapterServer(number, async_mode, port=port).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("folder", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_every_page_names_an_icon_from_the_static_folder(folder):
    # Without one, browsers ask for /favicon.ico, which no chapter serves: a 404 in every console.
    page = (folder / "templates" / "index.html").read_text(encoding="utf-8")
    icon = re.search(r"""<link rel="icon" href="{{ url_for\('static', filename='([^']+)'\) }}">""", page)
    assert icon and (ROOT / "static" / icon[1]).is_file()


def test_the_icon_is_served(chapter_server):
    with urllib.request.urlopen(chapter_server("01").url + "/static/favicon.svg") as response:
        assert response.headers["Content-Type"].startswith("image/svg+xml")


def test_chapter_09_answer_form_shows_only_while_the_server_asks(local_pages, chapter_server):
    server = chapter_server("09")
    page = local_pages(server.url + "/").open(server.url + "/")
    form = page.locator("#answer")
    expect(form).to_be_hidden()  # `hidden` beats the stylesheet's form { display: flex }
    page.locator("#ask").click()
    expect(page.locator("#question")).to_have_text("What is your favourite colour?")
    expect(form).to_be_visible()
    page.locator("#answer-text").fill("blue")
    page.locator("#answer button").click()
    expect(page.locator("#log li").last).to_have_text("Received: You answered: blue")
    expect(form).to_be_hidden()
    expect(page.locator("#question")).to_have_text("")


def test_chapter_01_shows_the_new_mode_after_a_restart_without_a_reload(local_pages, chapter_server):
    first = chapter_server("01", "threading")
    page = local_pages(first.url + "/").open(first.url + "/")
    expect(page.locator("#async-mode")).to_have_text("threading")
    expect(page.locator("#status")).to_have_text(re.compile("connected as "))
    first.stop()
    expect(page.locator("#status")).to_have_text(re.compile("disconnected"))
    chapter_server("01", "eventlet", port=first.port)
    expect(page.locator("#async-mode")).to_have_text("eventlet", timeout=15_000)  # the client retries at up to 5 s


def test_chapter_06_toast_stays_clear_of_the_header_and_goes_away(local_pages, chapter_server):
    server = chapter_server("06")
    pages = local_pages(server.url + "/")
    a, b = pages.open(server.url + "/"), pages.open(server.url + "/")
    b.clock.install()
    for page, name in ((a, "ann"), (b, "ben")):
        page.locator("#username").fill(name)
        page.locator("#sign-in button").click()
        expect(page.locator("#status")).to_have_text(re.compile(f"connected as {name}"))
    a.locator("#to").fill("ben")
    a.locator("#private-text").fill("hi")
    a.locator("#private button").click()
    toast = b.locator("#toast")
    expect(toast).to_have_text("ann: hi")
    header = b.locator("header").bounding_box()
    assert toast.bounding_box()["y"] > header["y"] + header["height"]
    b.clock.run_for(5000)
    expect(toast).to_be_hidden()


def test_make_notebooks_allows_root_only_as_root():
    dry_run = subprocess.run(["make", "-n", "notebooks"], cwd=ROOT, capture_output=True, text=True, check=True)
    [command] = [line for line in dry_run.stdout.splitlines() if "jupyter lab" in line]
    assert ("--allow-root" in command) == (os.geteuid() == 0)
