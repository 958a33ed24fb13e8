"""The classroom hub: the list, a chapter opened through it, diffs and README, A | B, Ctrl-C, LAN mode."""
import re
import socket

import psutil
import pytest
from playwright.sync_api import expect

from tutorial import CHAPTERS, hub as hub_module
from tutorial.__main__ import main
from tutorial.hub import Chapter, pick_port
from tutorial.servers import free_port

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
        chapters = psutil.Process(hub.process.pid).children()
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
