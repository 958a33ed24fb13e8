"""The classroom hub: the list, a chapter opened through it, diffs and README, A | B, Ctrl-C, LAN mode."""
import html
import json
import os
import re
import socket
import subprocess
import sys
from itertools import permutations

import psutil
import pytest
import requests
import socketio
from playwright.sync_api import expect

from tutorial import CHAPTERS, ROOT
from tutorial import hub as hub_module
from tutorial.__main__ import main
from tutorial.hub import Chapter, Hub, create_app, pick_port
from tutorial.servers import ChapterServer, free_port
from tutorial.testing import next_event

GREETING = "Hello from Flask-SocketIO!"


def in_order(lines, within):
    """Whether ``lines`` all appear in ``within``, in the same order."""
    rest = iter(within)
    return all(line in rest for line in lines)


def bindable(host, port):
    """Whether a server could listen on ``port`` now, as the chapters bind (SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return True
        except OSError:
            return False


# --- in Chromium, against the hub as a process ---

def test_the_list_shows_every_chapter_with_its_titles_and_live_status(open_hub_page):
    page = open_hub_page()
    expect(page.locator("#chapters tbody tr")).to_have_count(len(CHAPTERS))
    row = page.locator("#chapter-01")
    expect(row.locator(".title")).to_have_text("01 · Setup")
    expect(row.locator(".notes-title")).to_have_text("安装, 导入模块并配置")
    expect(row.locator(".summary")).to_have_text("install Flask-SocketIO, configure it, run it")
    expect(row.locator(".status")).to_have_text("running")
    expect(row.locator(".url")).to_have_text(re.compile(r"http://127\.0\.0\.1:\d+/"))


def test_a_chapter_opens_through_the_hub_and_works(open_hub_page):
    page = open_hub_page()
    with page.expect_popup() as popup:
        page.locator("#chapter-01 .open").click()
    expect(popup.value.locator("#greeting")).to_have_text(GREETING)


def test_a_chapter_that_died_is_shown_failed_and_opened_on_its_hub_page_to_restart(hub, open_hub_page):
    page = open_hub_page()
    [chapter] = [child for child in psutil.Process(hub.process.pid).children() if child.cwd() == str(CHAPTERS[0])]
    chapter.kill()
    expect(page.locator("#chapter-01 .status")).to_have_text("failed")
    with page.expect_popup() as popup:
        page.locator("#chapter-01 .open").click()  # a GET starts nothing: its page on the hub, with its log
    cockpit = popup.value
    expect(cockpit.locator("#status")).to_have_text("failed")
    cockpit.get_by_role("button", name="Restart").click()
    expect(cockpit.locator("#status")).to_have_text("running")
    expect(page.locator("#chapter-01 .status")).to_have_text("running")
    with cockpit.expect_popup() as chapter_page:
        cockpit.locator("#chapter-url").click()
    expect(chapter_page.value.locator("#greeting")).to_have_text(GREETING)


@pytest.mark.parametrize("index", range(min(2, len(CHAPTERS))), ids=[c.name for c in CHAPTERS[:2]])
@pytest.mark.parametrize("path", ["app.py", "templates/index.html"])
def test_the_diff_highlights_what_changed_since_the_previous_chapter(open_hub_page, index, path):
    new = Chapter.read(CHAPTERS[index]).source(path).splitlines()
    old = Chapter.read(CHAPTERS[index - 1]).source(path).splitlines() if index else []
    page = open_hub_page(f"/chapter/{CHAPTERS[index].name[:2]}/")
    diff = page.locator(f".diff[data-path='{path}']")
    added = [line[1:] for line in diff.locator(".gi").all_text_contents()]
    removed = [line[1:] for line in diff.locator(".gd").all_text_contents()]
    assert in_order(added, new) and in_order(removed, old)
    assert (added or removed) if new != old else not (added or removed)
    if not old:
        assert added == new
    if added:
        expect(diff.locator(".gi").first).to_have_css("background-color", "rgb(220, 252, 231)")


def test_the_readme_is_rendered_as_html(open_hub_page):
    page = open_hub_page("/chapter/01/")
    expect(page.locator("#readme article h1")).to_contain_text("01 · Setup")
    expect(page.locator("#readme article table").first).to_be_visible()
    expect(page.locator("#readme article pre code").first).to_be_visible()


def test_a_chinese_browser_gets_the_hub_in_chinese_and_english_stays_chosen(hub, open_hub_page):
    fonts = subprocess.run(["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True, check=True).stdout
    assert fonts.strip(), "no font draws Chinese: run scripts/install-system-packages (fonts-noto-cjk)"
    page = open_hub_page("/", locale="zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_contain_text("课堂总览页")
    expect(page.locator("#chapter-01 .status")).to_have_text("运行中")
    with page.expect_popup() as popup:
        page.locator("#chapter-01 .open").click()
    expect(popup.value.locator("#greeting")).to_have_text(GREETING)  # the chapter's own page, as it is
    page.locator("#chapter-01 .changes").click()
    expect(page.locator("#readme > h2")).to_have_text("README.zh-CN.md")
    expect(page.locator("#status")).to_have_text("运行中")
    page.locator("#readme article a", has_text="English").click()  # the README's own "English | 中文" line
    expect(page.locator("#readme > h2")).to_have_text("README.md")
    expect(page.locator("#to-adds")).to_have_text("What it adds")
    page.goto(f"{hub.url}/")
    expect(page.locator("h1")).to_contain_text("classroom hub")  # remembered, over the browser's Chinese
    page.locator("#language").click()  # the toggle
    expect(page.locator("#chapter-01 .changes")).to_have_text("日志、变化和 README")


def test_the_pair_view_shows_the_chapter_twice_as_two_clients(open_hub_page):
    page = open_hub_page("/chapter/01/pair")
    frames = [page.frame_locator(f"#frame-{name}") for name in "ab"]
    for frame in frames:
        expect(frame.locator("#greeting")).to_have_text(GREETING)
        expect(frame.locator("#status")).to_have_text(re.compile("connected as "))
    a, b = (frame.locator("#status").text_content() for frame in frames)
    assert a != b


@pytest.mark.parametrize("async_mode, lan, background", [("threading", False, False), ("eventlet", True, True)])
def test_ctrl_c_stops_every_chapter_and_frees_every_port(start_hub, async_mode, lan, background):
    with start_hub(*(["--lan"] if lan else []), env={"ASYNC_MODE": async_mode}, background=background) as hub:
        ports = hub.ports()
        running = [chapter for chapter in hub.chapters() if chapter["status"] == "running"]
        chapters = [child for child in psutil.Process(hub.process.pid).children() if "app.py" in child.cmdline()]
        children = psutil.Process(hub.process.pid).children(recursive=True)  # with the chapters' own helpers
        assert len(chapters) >= len(running) > 0
        if lan:  # every chapter on all interfaces, its debugger forced off whatever the environment says
            assert {(chapter.environ()["HOST"], chapter.environ()["FLASK_DEBUG"]) for chapter in chapters} \
                == {("0.0.0.0", "0")}, [chapter.cmdline() for chapter in chapters]
        assert hub.interrupt() == 0
        assert psutil.wait_procs(children, timeout=5)[1] == []
        host = "0.0.0.0" if lan else "127.0.0.1"
        assert [port for port in ports if not bindable(host, port) and hub.listens_on(port)] == []
        assert ("Students open:" if lan else "Classroom hub: http://127.0.0.1:") in hub.output()
        assert ("/instructor?key=" in hub.output()) == lan  # the instructor's link, for another machine


# --- in-process: LAN mode's settings, escaping, parsing ---

@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_lan_mode_refuses_to_enable_the_debugger(monkeypatch, capsys, value):
    monkeypatch.setenv("FLASK_DEBUG", value)
    monkeypatch.setattr(hub_module, "serve", lambda hub: pytest.fail("the hub started with the debugger on"))
    with pytest.raises(SystemExit) as exit:
        main(["hub", "--lan"])
    assert exit.value.code == 2
    assert "refusing FLASK_DEBUG with --lan" in capsys.readouterr().err


@pytest.mark.parametrize("argv, debug, host, chapter_debug", [
    (["hub", "--lan"], "0", "0.0.0.0", "0"),
    (["hub", "--lan"], None, "0.0.0.0", "0"),
    (["hub"], "1", "127.0.0.1", None),  # on this machine only, the debugger is the user's choice
    ([], None, "127.0.0.1", None),
    (["run"], None, "127.0.0.1", None),
])
def test_the_hub_decides_where_chapters_listen_and_their_debugger(monkeypatch, argv, debug, host, chapter_debug):
    if debug is None:
        monkeypatch.delenv("FLASK_DEBUG", raising=False)
    else:
        monkeypatch.setenv("FLASK_DEBUG", debug)
    started = []
    monkeypatch.setattr(hub_module, "serve", started.append)
    main(argv)
    [hub] = started
    assert (hub.host, hub.chapter_env["HOST"], hub.chapter_env.get("FLASK_DEBUG")) == (host, host, chapter_debug)


def test_the_hub_gives_the_chapters_no_key_of_its_own(monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)  # each chapter signs with the key in its instance folder
    assert [slot.log.label for slot in Hub(CHAPTERS).all_slots() if "FLASK_SECRET_KEY" in slot.env] == []


def test_lan_addresses_are_read_locally_and_exclude_loopback():
    assert all(not address.startswith("127.") for address in hub_module.lan_addresses())


def test_titles_come_from_the_docstring_or_else_the_folder(fake_chapters):
    first, second = (Chapter.read(folder) for folder in fake_chapters)
    assert (first.number, first.title, first.summary, first.notes_title) == ("01", "First", "the first step", "第一步")
    assert (second.number, second.title, second.summary, second.notes_title) == (
        "02", "Second", "A chapter being written.", "")


def test_readme_and_code_are_escaped_on_the_changes_page(hub_client):
    first = hub_client.get("/chapter/01/").get_data(as_text=True)
    assert "&lt;script&gt;alert('readme')&lt;/script&gt;" in first and "<script>alert" not in first
    assert "<table>" in first and "<h1>01 · First</h1>" in first
    second = hub_client.get("/chapter/02/").get_data(as_text=True)
    assert '<span class="gi">+shown = "&lt;b&gt;bold&lt;/b&gt;"</span>' in second
    assert '<span class="gd">-x = 1</span>' in second and "<b>bold" not in second
    assert "No change." in second and "no README yet" in second


@pytest.mark.parametrize("path", ["/chapter/03/", "/chapter/03/open", "/chapter/03/pair", "/chapter/1/"])
def test_an_unknown_chapter_is_not_found(hub_client, path):
    assert hub_client.get(path).status_code == 404


def test_chapters_keep_their_port_unless_it_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert pick_port("127.0.0.1", busy) != busy
    free = free_port()
    assert pick_port("127.0.0.1", free) == free


# --- the instructor's cockpit (issue 13), in Chromium against the hub as a process ---

def admin_ui(page, url, password):
    """Sign the Socket.IO Admin UI at ``url`` in to its chapter's server, as an instructor would type it."""
    page.goto(f"{url}static/vendor/admin-ui/index.html")
    page.get_by_label("Server URL").fill(url.rstrip("/"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("connected", exact=True).first).to_be_visible()


def admin_view(page, view, namespace):
    """Open one of the Admin UI's views (Sockets, Rooms) for ``namespace`` (it opens on /admin, its own)."""
    page.get_by_role("link", name=view).click()
    page.locator("main .v-select").first.click()
    options = page.locator(".menuable__content__active .v-list-item")
    options.filter(has_text=re.compile(f"^\\s*{namespace}\\s*$")).click()


def log_in(frame, name):
    """Log a chapter 10 frame in as ``name``, and wait until its page is connected."""
    frame.locator("#username").fill(name)
    frame.locator("#login button").click()
    expect(frame.locator("#status")).to_have_text(f"connected as {name}")


def test_an_instructor_runs_the_class_from_the_hub(open_hub_page, hub):
    """Issue 13's "done when": logs, chapter 10's two users across two servers, the Admin UI, a Redis outage."""
    page = open_hub_page("/chapter/02/")
    expect(page.locator("#log")).to_contain_text("starting 02_connect")  # the lines kept from before
    chapter = page.context.new_page()
    chapter.goto(page.locator("#chapter-url").get_attribute("href"))
    chapter.locator("#name").fill("instructor")
    chapter.locator("#connect").click()
    expect(page.locator("#log")).to_contain_text("'instructor' connected to /test as")  # its print(), live
    assert "[02] " not in hub.output()  # the hub's terminal stays quiet unless asked (--logs)

    page.set_viewport_size({"width": 1366, "height": 768})  # a projector
    page.goto(f"{hub.url}/chapter/10/pair")
    expect(page.locator("#redis-url")).to_have_text(re.compile(r"redis://:[0-9a-f]+@127\.0\.0\.1:\d+/0"))
    publish = page.locator("#publish").text_content()
    assert f"REDIS_URL={page.locator('#redis-url').text_content()} {sys.executable} publish.py --to " in publish
    a, b = (page.frame_locator(f"#frame-{name}") for name in "ab")
    for name in "ab":  # the live part above the fold, the log beside the frames
        frame, demo = page.locator(f"#frame-{name}").bounding_box(), page.frame_locator(f"#frame-{name}").locator(
            ".demo").bounding_box()
        assert frame["y"] + frame["height"] <= 768 and demo["y"] < frame["y"] + frame["height"] / 4, (frame, demo)
    assert page.locator("#log").bounding_box()["x"] > page.locator("#frame-b").bounding_box()["x"]
    log_in(b, "bob")  # on the second server
    log_in(a, "alice")  # B kept its own cookie: still bob
    expect(b.locator("#user")).to_have_text("bob")

    a.locator("#to").fill("bob")
    a.locator("#text").fill("hello from A")
    a.locator("#send button").click()
    expect(b.locator("#notifications li").first).to_have_text("alice: hello from A")

    page.locator("#redis-stop").click()
    expect(page.locator("#redis-status")).to_have_text("stopped")
    for frame in (a, b):
        expect(frame.locator("#status")).to_have_text("notifications unavailable: cannot reach Redis")
    page.locator("#redis-start").click()
    expect(a.locator("#status")).to_have_text("connected as alice", timeout=10_000)
    expect(b.locator("#status")).to_have_text("connected as bob", timeout=10_000)
    expect(page.locator("#log")).to_contain_text("lost Redis")

    admin = page.context.new_page()
    admin_ui(admin, page.locator("#chapter-url").get_attribute("href"), page.locator("#admin-password").text_content())
    page.locator("#frame-b").evaluate("frame => { frame.src = frame.src; }")  # bob connects again, on server 2
    expect(b.locator("#status")).to_have_text("connected as bob")
    admin_view(admin, "Rooms", "/")
    for room in ("user:alice", "user:bob"):  # bob's is on the second server: it reached this one through Redis
        expect(admin.locator("tbody tr").filter(has_text=room)).to_contain_text("1")
    admin_view(admin, "Sockets", "/")
    expect(admin.locator("tbody tr")).to_have_count(2)


def test_the_admin_namespace_of_chapter_09_needs_the_hubs_password(hub):
    [url] = [chapter["url"] for chapter in hub.chapters() if chapter["number"] == "09"]
    password = re.search(r"password (\S+)", hub.output())[1]
    refused = socketio.SimpleClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        refused.connect(url, namespace="/admin", auth={"username": "admin", "password": "wrong"}, wait_timeout=5)
    admin = socketio.SimpleClient()
    admin.connect(url, namespace="/admin", auth={"username": "admin", "password": password}, wait_timeout=5)
    try:
        assert next_event(admin, "config") == {"supportedFeatures": ["AGGREGATED_EVENTS", "ALL_EVENTS"]}  # read-only
    finally:
        admin.disconnect()


def test_stop_and_restart_buttons_and_chapter_01_shows_a_new_mode_without_a_reload(open_hub_page):
    hub_page = open_hub_page("/")
    row = hub_page.locator("#chapter-01")
    expect(row.locator(".url")).not_to_be_empty()
    url = row.locator(".url").text_content()
    page = open_hub_page("/chapter/01/open")
    expect(page.locator("#async-mode")).to_have_text("threading")
    page.evaluate("socket.io.reconnectionDelay(100).reconnectionDelayMax(500)")  # the test's patience, not the page's
    row.locator(".stop").click()
    expect(row.locator(".status")).to_have_text("stopped")
    expect(page.locator("#status")).to_have_text(re.compile("disconnected"))
    # As the chapter 01 README says: restart it with ASYNC_MODE=eventlet, and the page shows the new mode.
    with ChapterServer("01", "eventlet", port=int(url.rstrip("/").rsplit(":", 1)[1])):
        expect(page.locator("#async-mode")).to_have_text("eventlet", timeout=15_000)  # a reconnection on a busy machine
    row.locator(".restart").click()
    expect(row.locator(".status")).to_have_text("running")
    expect(row.locator(".url")).to_have_text(url)  # the same address again


WERKZEUG_WARNING = "WARNING: This is a development server. Do not use it in a production deployment. Use a " \
                   "production WSGI server instead."


@pytest.mark.parametrize("headers, note", [
    ({}, "↑ hub: expected. The chapters run on Werkzeug, the development server"),
    ({"Accept-Language": "zh-CN"}, "↑ 总览页：这在意料之中。各章运行在 Werkzeug 上"),
])
def test_the_log_explains_werkzeugs_warning_under_it(fake_chapters, headers, note):
    hub = Hub(fake_chapters)
    hub.slots["01"].log.write(f" * Debug mode: off\n\x1b[31m\x1b[1m{WERKZEUG_WARNING}\x1b[0m\n * Running on\n".encode())
    response = create_app(hub).test_client().get("/chapter/01/log", headers=headers, buffered=False)
    try:
        events = next(iter(response.response)).decode()
    finally:
        response.close()
    lines = [json.loads(line.removeprefix("data: ")) for line in events.splitlines() if line.startswith("data: ")]
    assert lines[0] == " * Debug mode: off" and lines[1] == WERKZEUG_WARNING and lines[3] == " * Running on"
    assert lines[2].startswith(note) and "chapter 10" in lines[2].replace("第 10 章", "chapter 10")
    assert "id: 3\n" in events  # the note is no line of the server's: a reconnecting page asks from line 3 on


def test_the_hub_prints_every_chapters_output_prefixed_when_asked(monkeypatch, capsys):
    started = []
    monkeypatch.setattr(hub_module, "serve", started.append)
    main(["hub", "--logs"])
    [hub] = started
    assert {slot.log.echo for slot in hub.all_slots()} == {True}
    hub.slots["02"].log.write(b"'ann' connected\n\x1b[33mPress CTRL+C to quit\x1b[0m\npartial")
    assert capsys.readouterr().out == "[02] 'ann' connected\n[02] Press CTRL+C to quit\n"


@pytest.mark.parametrize("number, new, unchanged", [
    ("06", ["def join(data):", "def private_message(data):", '<form id="room-form"'],
     ["protect(app, socketio)", "def create_app(**settings):", "socketio = SocketIO()"]),
    ("10", ["def forward_notifications(", "def send_notification(data):", '<form id="send"'], ["socketio = SocketIO("]),
])
def test_what_a_chapter_adds_is_the_line_diff_of_its_new_idea(real_hub_client, number, new, unchanged):
    page = real_hub_client.get(f"/chapter/{number}/").get_data(as_text=True)
    adds = page[page.index('<section id="adds">'):page.index('<section id="readme">')]
    adds = html.unescape(re.sub(r"<[^>]+>", "", adds))
    changed = [line[1:] for line in adds.splitlines() if line[:1] in "+-"]
    assert all(any(text in line for line in changed) for text in new)
    assert not [line for line in changed for text in unchanged if text in line]


def test_the_readme_has_the_hubs_ports_and_working_links(real_hub, real_hub_client):
    port = real_hub.slots["05"].port
    page = real_hub_client.get("/chapter/05/").get_data(as_text=True)
    readme = html.unescape(re.sub(r"<[^>]+>", "", page[page.index('<section id="readme">'):]))
    assert f"http://127.0.0.1:{port}/notify" in readme  # the curl line
    # Only a command that starts the chapter by hand, alone, keeps its own port.
    assert all(re.search(r"make run|app\.py", line) for line in readme.splitlines() if ":5000" in line)
    page = real_hub_client.get("/chapter/10/").get_data(as_text=True)
    assert 'href="#readme"' in page[:page.index('<section id="adds">')]  # reachable from the top
    for link, expected in (("RUNNING.md", "<h1>"), ("../groundwork/serving.py", "def share_private_redis")):
        href = re.search(f'<a href="(/file/[^"]*{re.escape(link.rsplit("/", 1)[-1])})"', page)[1]
        response = real_hub_client.get(href)
        assert response.status_code == 200 and expected in response.get_data(as_text=True), link


# --- one identity per chapter (issue 24.1), through the hub as a process ---

LOGINS = ("09", "10")  # the chapters that sign a user in with a session cookie (POST /login)


def logged_in(url, name):
    """The session cookie (its name, its value) the chapter at ``url`` sets when ``name`` logs in."""
    response = requests.post(f"{url}login", data={"username": name}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    [cookie] = response.cookies.items()
    return cookie


def test_a_cookie_from_one_chapter_opens_no_session_in_another(hub):
    urls = {chapter["number"]: chapter["url"] for chapter in hub.chapters()}
    cookies = {number: logged_in(urls[number], "mallory") for number in LOGINS}
    for number, (name, value) in cookies.items():  # each chapter's own cookie opens its own session
        assert ">mallory<" in requests.get(urls[number], cookies={name: value}, timeout=10).text
    for own, other in permutations(LOGINS, 2):
        # As a browser sends it (cookies ignore ports), and as a tool would, under the other chapter's cookie name.
        value = cookies[own][1]
        page = requests.get(urls[other], cookies={cookies[own][0]: value, cookies[other][0]: value}, timeout=10)
        assert ">mallory<" not in page.text, f"chapter {own}'s cookie opened a session in chapter {other}"


# --- chapters' rough edges, seen on the hub's chapters (the others: test_rough_edges.py) ---

def test_chapter_09_answer_form_shows_only_while_the_server_asks(open_hub_page, hub):
    page = open_hub_page("/chapter/09/open")
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


def test_chapter_06_toast_stays_clear_of_the_header_and_goes_away(open_hub_page):
    a, b = open_hub_page("/chapter/06/open"), open_hub_page("/chapter/06/open")
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


# --- in-process: the hub's safety, the rough edges ---

def test_the_hubs_buttons_refuse_a_post_from_another_site(hub_client):
    assert hub_client.post("/chapter/01/stop").status_code == 403
    assert hub_client.post("/chapter/01/stop", headers={"X-Hub": "1"}).status_code == 200


# --- in-process: the hub on a classroom network (issue 24.2, 24.3): students read, the instructor acts ---

THIS_MACHINE, STUDENT = "10.1.2.1", "10.1.2.3"  # on the classroom network: the hub's machine, a student's
REDIS_PASSWORD = "s3cret"


class FakeRedis:
    """What the hub uses of chapter 10's PrivateRedis: its URL (with its password), stop and start."""

    url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6399/0"
    process = None  # stopped

    def __init__(self):
        self.calls = []

    def stop(self):
        self.calls.append("stop")

    def start(self):
        self.calls.append("start")


@pytest.fixture
def lan_hub(monkeypatch):
    """A hub of the real chapters as ``make run LAN=1`` makes it, on THIS_MACHINE; its servers' starts and stops
    recorded in ``hub.calls`` (nothing starts), chapter 10's Redis a FakeRedis."""
    monkeypatch.setattr(hub_module, "lan_addresses", lambda: [THIS_MACHINE])
    hub = Hub(CHAPTERS, host=hub_module.ALL_INTERFACES)
    hub.calls = []
    for action in ("start", "halt", "restart"):
        monkeypatch.setattr(hub_module.ChapterSlot, action,
                            lambda slot, action=action: hub.calls.append((slot.log.label, action)))
    hub.redis["10"] = FakeRedis()
    return hub


def visitor(hub, address):
    """Flask's test client for ``hub``, as a browser at ``address`` reaches it."""
    client = create_app(hub).test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def instructors_browser(hub):
    """A browser on a student's address that opened the instructor's link the hub printed."""
    client = visitor(hub, STUDENT)
    assert client.get(f"/instructor?key={hub.instructor_key}").status_code == 302
    return client


@pytest.mark.parametrize("path", ["/api/chapters", "/chapter/10/", "/chapter/10/pair"])
@pytest.mark.parametrize("who, shown", [
    ("127.0.0.1", True), (THIS_MACHINE, True), ("instructor's link", True), (STUDENT, False),
])
def test_secrets_are_shown_to_the_instructor_only(lan_hub, path, who, shown):
    client = instructors_browser(lan_hub) if who == "instructor's link" else visitor(lan_hub, who)
    page = client.get(path).get_data(as_text=True)
    assert "redis_status" in page or "redis-status" in page  # chapter 10's Redis is on every page
    secrets = {"Redis's password": REDIS_PASSWORD, "Publish's paths": str(ROOT)}
    if path != "/api/chapters":
        secrets["the Admin UI's password"] = lan_hub.admin_password
    assert {name: secret in page for name, secret in secrets.items()} == dict.fromkeys(secrets, shown)


CONTROLS = ["/chapter/10/stop", "/chapter/10/restart", "/chapter/10/start", "/chapter/10/second/start",
            "/chapter/10/second/stop", "/chapter/10/redis/stop", "/chapter/10/redis/start"]


def test_a_student_reads_everything_and_changes_nothing(lan_hub):
    student = visitor(lan_hub, STUDENT)
    for path in ("/", "/chapter/10/", "/chapter/10/pair", "/file/README.md", "/api/chapters"):
        page = student.get(path)
        assert page.status_code == 200, path
        assert not re.search("data-(post|action|check)=", page.get_data(as_text=True)), f"{path} shows the buttons"
    for path in CONTROLS:
        assert student.post(path, headers={"X-Hub": "1"}).status_code == 403, path
    assert student.get("/instructor?key=guessed").status_code == 403
    assert student.post(CONTROLS[0], headers={"X-Hub": "1"}).status_code == 403  # (no key in its cookie)
    assert (lan_hub.calls, lan_hub.redis["10"].calls) == ([], [])


@pytest.mark.parametrize("who", ["127.0.0.1", THIS_MACHINE, "instructor's link"])
def test_the_instructor_has_the_buttons(lan_hub, who):
    client = instructors_browser(lan_hub) if who == "instructor's link" else visitor(lan_hub, who)
    assert 'data-post="/chapter/10/redis/stop"' in client.get("/chapter/10/").get_data(as_text=True)
    for path in CONTROLS:
        assert client.post(path, headers={"X-Hub": "1"}).status_code == 200, path
    assert lan_hub.calls == [("10", "halt"), ("10", "restart"), ("10", "start"), ("10b", "start"), ("10b", "halt")]
    assert lan_hub.redis["10"].calls == ["stop", "start"]


def test_the_instructor_checks_an_exercise_and_a_student_only_reads_it(lan_hub):
    instructor, student = visitor(lan_hub, "127.0.0.1"), visitor(lan_hub, STUDENT)
    assert 'data-check="/chapter/06/check/2"' in instructor.get("/chapter/06/").get_data(as_text=True)
    report = instructor.post("/chapter/06/check/2", headers={"X-Hub": "1"}).get_json()["report"]
    assert report.splitlines()[:2] == ['Chapter 06_rooms: 0 of 1 exercises done (README.md, "Now you try")',
                                       "  not yet  2. A notification to a whole team"]
    assert "still missing: Bob, in Ana's team, got no 'team message'" in report
    page = student.get("/chapter/06/").get_data(as_text=True)
    assert "A notification to a whole team" in page and "data-check" not in page
    assert student.post("/chapter/06/check/2", headers={"X-Hub": "1"}).status_code == 403


def test_opening_a_stopped_chapter_starts_nothing(lan_hub):
    response = visitor(lan_hub, STUDENT).get("/chapter/03/open")  # as an <img> on any page could
    assert response.status_code == 302 and response.location == "/chapter/03/"  # its page on the hub
    assert lan_hub.calls == []


def route_examples(app):
    """Every route of ``app`` with each of its methods, its parameters filled in."""
    values = {"number": "10", "action": "stop", "path": "README.md", "filename": "tutorial.css", "exercise": "1"}
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(f"<(?:[^:>]+:)?{name}>", values[name], path)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            yield method, path


@pytest.mark.parametrize("host", [hub_module.LOCAL, hub_module.ALL_INTERFACES])
def test_a_host_name_the_hub_does_not_serve_is_refused_on_every_route(lan_hub, host):
    lan_hub.host = host
    app = create_app(lan_hub)
    client = app.test_client()  # from this machine: a page whose name was made to resolve to 127.0.0.1
    routes = list(route_examples(app))
    assert len(routes) >= 12 and ("POST", "/chapter/10/redis/stop") in routes
    for method, path in routes:
        response = client.open(path, method=method, headers={"Host": "rebind.evil.example:5000", "X-Hub": "1"})
        assert response.status_code == 400, (method, path)
    assert (lan_hub.calls, lan_hub.redis["10"].calls) == ([], [])
    served = ["127.0.0.1:5000", "localhost:5000"] + ([f"{THIS_MACHINE}:5000"] if host != hub_module.LOCAL else [])
    for name in served:
        assert client.get("/api/chapters", headers={"Host": name}).status_code == 200, name
    assert (client.get("/", headers={"Host": f"{THIS_MACHINE}:5000"}).status_code == 200) == (host != hub_module.LOCAL)


def test_the_hub_process_refuses_a_host_name_it_does_not_serve(hub):
    response = requests.get(f"{hub.url}/api/chapters", headers={"Host": "rebind.evil.example:5000"}, timeout=10)
    assert response.status_code == 400


@pytest.mark.parametrize("path, shown", [
    ("bench/README.md", True), ("10_redis_pubsub/nginx.conf", True), ("01_setup/app.py", True),
    ("01_setup/instance/secret_key", False), (".venv/pyvenv.cfg", False), ("../etc/passwd", False),
    ("node_modules/.package-lock.json", False), ("static/favicon.svg", False),
])
def test_readme_links_open_repository_text_files_only(path, shown):
    assert (hub_module.shown_file(path) is not None) == shown


@pytest.mark.parametrize("path", ["%00", "README.md%00", "x" * 5000 + ".md", f"{'a/' * 2000}README.md"])
def test_a_path_that_is_no_file_name_is_not_found(lan_hub, path):
    response = visitor(lan_hub, "127.0.0.1").get(f"/file/{path}")
    assert response.status_code == 404


def test_a_link_in_a_shown_folder_to_a_hidden_file_is_not_shown(tmp_path):
    hidden = ROOT / ".venv" / f"hidden-{os.getpid()}.md"
    link = ROOT / "bench" / f"link-{os.getpid()}.md"
    hidden.write_text("private")
    try:
        link.symlink_to(hidden)
        assert hub_module.shown_file(link.relative_to(ROOT).as_posix()) is None
    finally:
        link.unlink(missing_ok=True)
        hidden.unlink()


def test_a_taken_port_names_the_port_setting(monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("PORT", str(port))
        for argv in (["hub"], ["run", "05"]):
            with pytest.raises(SystemExit) as exit:
                main(argv)
            error = capsys.readouterr().err
            assert exit.value.code == 2 and f"port {port} is taken" in error and f"PORT={port + 100}" in error
