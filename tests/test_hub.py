"""The classroom hub: the list, a chapter opened through it, diffs and README, A | B, Ctrl-C, LAN mode."""
import re
import socket
import sys

import psutil
import pytest
from playwright.sync_api import expect

from tutorial import CHAPTERS, hub as hub_module
from tutorial.__main__ import main
from tutorial.hub import Chapter, pick_port
from tutorial.servers import free_port
from tutorial.testing import until

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


def test_a_chapter_that_died_is_shown_failed_and_starts_again_when_opened(hub, open_hub_page):
    page = open_hub_page()
    [chapter] = [child for child in psutil.Process(hub.process.pid).children() if child.cwd() == str(CHAPTERS[0])]
    chapter.kill()
    expect(page.locator("#chapter-01 .status")).to_have_text("failed")
    with page.expect_popup() as popup:
        page.locator("#chapter-01 .open").click()
    expect(popup.value.locator("#greeting")).to_have_text(GREETING)
    expect(page.locator("#chapter-01 .status")).to_have_text("running")


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
        assert [port for port in ports if not bindable(host, port)] == []
        assert ("Students open:" if lan else "Classroom hub: http://127.0.0.1:") in hub.output()


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
    assert len(hub.chapter_env["FLASK_SECRET_KEY"]) == 64


def test_lan_addresses_are_read_locally_and_exclude_loopback():
    assert all(not address.startswith("127.") for address in hub_module.lan_addresses())


def test_titles_come_from_the_docstring_or_else_the_folder(fake_chapters):
    first, second = (Chapter.read(folder) for folder in fake_chapters)
    assert (first.number, first.title, first.summary, first.notes_title) == ("01", "First", "the first step", "第一步")
    assert (second.number, second.title, second.summary, second.notes_title) == ("02", "Second", "A chapter being written.", "")


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


def test_a_chapters_log_streams_to_the_hub_as_it_is_written(open_hub_page, hub):
    page = open_hub_page("/chapter/02/")
    log = page.locator("#log")
    expect(log).to_contain_text("starting 02_connect")  # the lines kept from before the page opened
    chapter = page.context.new_page()
    chapter.goto(page.locator("#chapter-url").get_attribute("href"))
    chapter.locator("#name").fill("instructor")
    chapter.locator("#connect").click()
    expect(log).to_contain_text("'instructor' connected to /test as")  # the chapter's print(), on the hub
    assert "[02] " not in hub.output()  # the hub's terminal stays quiet unless asked (--logs)


def test_the_hub_prints_every_chapters_output_prefixed_when_asked(start_hub):
    with start_hub("--logs") as hub:
        hub.chapters()
        assert until(lambda: "[02]  * Running on http://127.0.0.1:" in hub.output(), what=hub.output())


def test_chapter_10_pair_is_two_users_a_notification_crosses_and_survives_a_redis_outage(open_hub_page):
    page = open_hub_page("/chapter/10/pair")
    expect(page.locator("#redis-url")).to_have_text(re.compile(r"redis://127\.0\.0\.1:\d+/0"))
    publish = page.locator("#publish").text_content()
    assert f"REDIS_URL={page.locator('#redis-url').text_content()} {sys.executable} publish.py --to " in publish
    a, b = (page.frame_locator(f"#frame-{name}") for name in "ab")
    log_in(b, "bob")
    log_in(a, "alice")  # B kept its own cookie: still bob
    expect(b.locator("#user")).to_have_text("bob")
    a.locator("#to").fill("bob")
    a.locator("#text").fill("hello from A")
    a.locator("#send button").click()
    expect(b.locator("#notifications li").first).to_have_text(re.compile(r"#\d+ alice: hello from A"))
    page.locator("#redis-stop").click()
    expect(page.locator("#redis-status")).to_have_text("stopped")
    for frame in (a, b):
        expect(frame.locator("#status")).to_have_text("notifications unavailable: cannot reach Redis")
    page.locator("#redis-start").click()
    expect(a.locator("#status")).to_have_text("connected as alice", timeout=10_000)
    expect(b.locator("#status")).to_have_text("connected as bob", timeout=10_000)
    expect(page.locator("#log")).to_contain_text("lost Redis")


def test_the_admin_ui_shows_chapter_10s_two_users_and_their_rooms(open_hub_page):
    hub_page = open_hub_page("/chapter/10/pair")
    password = hub_page.locator("#admin-password").text_content()
    url = hub_page.locator("#chapter-url").get_attribute("href")
    a, b = (hub_page.frame_locator(f"#frame-{name}") for name in "ab")
    admin = hub_page.context.new_page()
    admin_ui(admin, url, password)  # first: the second server's users reach it through the message queue
    log_in(a, "ann")
    log_in(b, "ben")
    admin_view(admin, "Rooms", "/")
    for room in ("user:ann", "user:ben"):  # ben's is on the second server: it reached this one through Redis
        expect(admin.locator("tbody tr").filter(has_text=room)).to_contain_text("1")
    admin_view(admin, "Sockets", "/")
    expect(admin.locator("tbody tr")).to_have_count(2)


def test_the_admin_ui_of_chapter_09_is_local_and_needs_the_password(open_hub_page):
    hub_page = open_hub_page("/chapter/09/")
    url = hub_page.locator("#chapter-url").get_attribute("href")
    admin = hub_page.context.new_page()
    admin.goto(f"{url}static/vendor/admin-ui/index.html")
    admin.get_by_label("Server URL").fill(url.rstrip("/"))
    admin.get_by_label("Username").fill("admin")
    admin.get_by_label("Password").fill("wrong")
    admin.get_by_role("button", name="Connect").click()
    expect(admin.get_by_text(re.compile("invalid credentials|authentication failed", re.I)).first).to_be_visible()
    admin_ui(admin, url, hub_page.locator("#admin-password").text_content())
    chapter = hub_page.context.new_page()
    chapter.goto(url)
    admin_view(admin, "Sockets", "/test")  # the page's namespace
    expect(admin.locator("tbody tr")).to_have_count(1)


def test_stop_and_restart_buttons_act_on_the_chapter(open_hub_page):
    page = open_hub_page("/")
    row = page.locator("#chapter-03")
    url = row.locator(".url").text_content() if row.locator(".url").text_content() else None
    row.locator(".stop").click()
    expect(row.locator(".status")).to_have_text("stopped")
    row.locator(".restart").click()
    expect(row.locator(".status")).to_have_text("running")
    if url:
        expect(row.locator(".url")).to_have_text(url)  # the same address again


def test_the_pair_view_fits_a_projector_with_the_live_part_above_the_fold(open_hub_page):
    page = open_hub_page("/chapter/06/pair")
    page.set_viewport_size({"width": 1366, "height": 768})
    for name in "ab":
        frame = page.frame_locator(f"#frame-{name}")
        demo = frame.locator(".demo").bounding_box()  # in the page's coordinates
        box = page.locator(f"#frame-{name}").bounding_box()
        assert box["y"] + box["height"] <= 768 and demo["y"] < box["y"] + box["height"] / 4, (box, demo)
    assert page.locator("#log").bounding_box()["x"] > page.locator("#frame-b").bounding_box()["x"]


@pytest.mark.parametrize("number, new, folded", [
    ("06", ["def on_join", "def on_leave", "def on_private_message", "form#room-form"], ["def reject", "header"]),
    ("10", ["def forward_notifications", "def send_notification", "def create_app", "form#send"],
     ["socketio", "section.demo"]),
])
def test_what_a_chapter_adds_is_its_new_idea_with_the_skeleton_folded(open_hub_page, number, new, folded):
    page = open_hub_page(f"/chapter/{number}/")
    shown = page.locator("#adds .part").evaluate_all("parts => parts.map(part => part.dataset.name)")
    assert set(new) <= set(shown) and not set(folded) & set(shown)
    for name in folded:
        expect(page.locator(".skeleton summary").filter(has_text=name).first).to_be_attached()
    expect(page.locator(".skeleton").first).not_to_have_attribute("open", "")
    expect(page.locator(".part.new .gi").first).to_have_css("background-color", "rgb(220, 252, 231)")


def test_the_readme_has_the_hubs_ports_and_working_links(open_hub_page):
    page = open_hub_page("/chapter/10/")
    expect(page.locator("#to-readme")).to_be_visible()  # reachable from the top
    port = page.locator("#chapter-url").get_attribute("href").rstrip("/").rsplit(":", 1)[1]
    readme = page.locator("#readme article").text_content()
    assert f"http://127.0.0.1:{port}" in readme
    # Only a command that starts the chapter by hand, alone, keeps its own port.
    assert all(re.search("make run|app\\.py", line) for line in readme.splitlines() if ":5000" in line)
    for link in ("nginx.conf", "../bench/README.md"):
        href = page.locator("#readme article").locator(f"a[href$='{link.rsplit('/', 1)[-1]}']").first.get_attribute("href")
        response = page.request.get(hub_url(page) + href)
        assert response.ok, (link, href)
    page.locator("#readme article a[href$='nginx.conf']").first.click()
    expect(page.locator("#file")).to_contain_text("upstream")


def hub_url(page):
    return page.url.split("/chapter/")[0]


# --- in-process: the hub's safety, the rough edges ---

def test_the_hubs_buttons_refuse_a_post_from_another_site(hub_client):
    assert hub_client.post("/chapter/01/stop").status_code == 403
    assert hub_client.post("/chapter/01/stop", headers={"X-Hub": "1"}).status_code == 200


@pytest.mark.parametrize("path, shown", [
    ("bench/README.md", True), ("10_redis_pubsub/nginx.conf", True), ("01_setup/app.py", True),
    ("01_setup/instance/secret_key", False), (".venv/pyvenv.cfg", False), ("../etc/passwd", False),
    ("node_modules/.package-lock.json", False), ("static/favicon.svg", False),
])
def test_readme_links_open_repository_text_files_only(path, shown):
    assert (hub_module.shown_file(path) is not None) == shown


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
            assert exit.value.code in (1, 2) and f"port {port} is taken" in error and f"PORT={port + 100}" in error
