"""The hub in the reader's language: its catalogue, the choice (browser, toggle, a README's line), the twins."""
import re

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tutorial import ROOT
from tutorial import hub as hub_module

TUTORIAL = ROOT / "tutorial"
CATALOGUE = TUTORIAL / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


def hub_texts():
    """Every text the hub's code and templates give to gettext, found as `make messages` finds them."""
    with open(TUTORIAL / "babel.cfg", encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {message for _, _, message, *_ in extract_from_dir(TUTORIAL, method_map, options_map)}


def catalogue_problems(catalogue, texts):
    """What keeps ``catalogue`` from translating ``texts``: missing, empty, fuzzy, stale or broken entries."""
    problems = ["the whole catalogue is marked fuzzy"] if catalogue.fuzzy else []
    for text in sorted(texts):
        message = catalogue.get(text)
        if message is None or not message.string:
            problems.append(f"not translated: {text!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy (a guess to check): {text!r}")
    problems += [f"no longer in the hub: {message.id!r}" for message in catalogue if message.id and
                 message.id not in texts]
    problems += [f"{message.id!r}: {error}" for message, errors in catalogue.check() for error in errors]
    return problems


def read_catalogue():
    with open(CATALOGUE, "rb") as file:
        return read_po(file)


def test_the_catalogue_translates_every_text_of_the_hub():
    assert catalogue_problems(read_catalogue(), hub_texts()) == []


def test_the_hub_reads_the_catalogue_as_it_is_now():
    compiled = CATALOGUE.with_suffix(".mo")
    assert compiled.is_file() and compiled.stat().st_mtime >= CATALOGUE.stat().st_mtime, \
        "the hub reads the compiled catalogue: `make setup` compiles it again"


@pytest.mark.parametrize("spoil, problem", [
    (lambda catalogue: catalogue.delete("Restart"), "not translated: 'Restart'"),
    (lambda catalogue: catalogue["Restart"].flags.add("fuzzy"), "fuzzy (a guess to check): 'Restart'"),
    (lambda catalogue: setattr(catalogue["Restart"], "string", ""), "not translated: 'Restart'"),
    (lambda catalogue: catalogue.add("Gone"), "no longer in the hub: 'Gone'"),
    (lambda catalogue: setattr(catalogue["There is no chapter %(number)s."], "string", "没有第 %(chapter)s 章。"),
     "'There is no chapter %(number)s.': unknown named placeholder 'chapter'"),
])
def test_a_missing_fuzzy_or_broken_translation_is_a_problem(spoil, problem):
    catalogue = read_catalogue()
    spoil(catalogue)
    assert problem in catalogue_problems(catalogue, hub_texts())


@pytest.mark.parametrize("accept, language", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"), ("zh", "zh-CN"), ("en-US,en;q=0.9", "en"), ("fr-FR", "en"), (None, "en"),
])
def test_the_browsers_preference_chooses_the_language(real_hub_client, accept, language):
    page = real_hub_client.get("/", headers={"Accept-Language": accept} if accept else {}).get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    assert ("课堂总览页" in page) == (language == "zh-CN")


@pytest.mark.parametrize("path", ["/", "/chapter/01/"])
@pytest.mark.parametrize("headers, tagline", [
    (CHINESE, "安装 Flask-SocketIO，配置它，运行它"), ({}, "install Flask-SocketIO, configure it, run it"),
])
def test_the_chapters_taglines_are_in_the_readers_language(real_hub_client, path, headers, tagline):
    page = real_hub_client.get(path, headers=headers).get_data(as_text=True)
    assert re.search(f'class="summary">{tagline}<', page)



@pytest.mark.parametrize("headers, title", [(CHINESE, "每个团队一个房间"), ({}, "A room per team")])
def test_the_exercises_titles_are_in_the_readers_language(real_hub_client, headers, title):
    # They were English on a Chinese page; the Chinese README names each one in Chinese too.
    page = real_hub_client.get("/chapter/06/", headers=headers).get_data(as_text=True)
    exercises = page[page.index('<section id="exercises">'):]
    assert f"<li>{title}" in exercises

def test_a_chapters_tagline_is_text_in_any_language(fake_chapters, monkeypatch):
    monkeypatch.setattr(hub_module, "gettext", lambda text: f"<i>{text}</i>")  # a translation with markup in it
    page = hub_module.create_app(hub_module.Hub(fake_chapters)).test_client().get("/").get_data(as_text=True)
    assert "&lt;i&gt;the first step&lt;/i&gt;" in page


def test_the_toggle_is_remembered_over_the_browsers_preference(real_hub_client):
    toggle = re.search(r'<a id="language"[^>]* href="([^"]+)"[^>]*>English</a>',
                       real_hub_client.get("/chapter/03/", headers=CHINESE).get_data(as_text=True))[1]
    assert toggle == "?lang=en"
    response = real_hub_client.get("/chapter/03/?lang=en", headers=CHINESE)
    assert response.status_code == 302 and response.location == "/chapter/03/"  # a reload asks nothing again
    assert "SameSite=Lax" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    for path in ("/", "/chapter/03/", "/file/README.md"):
        page = real_hub_client.get(path, headers=CHINESE).get_data(as_text=True)
        assert '<html lang="en">' in page and ">中文</a>" in page, path
    real_hub_client.get("/?lang=zh-CN")
    assert '<html lang="zh-CN">' in real_hub_client.get("/").get_data(as_text=True)


def test_an_unknown_language_is_refused_clearly(real_hub_client):
    response = real_hub_client.get("/?lang=fr")
    assert response.status_code == 400 and "The hub speaks en, zh-CN." in response.get_data(as_text=True)


@pytest.mark.parametrize("number, headers, shown, words, untranslated", [
    ("01", CHINESE, "README.zh-CN.md", "本章学到什么", False),
    ("01", {}, "README.md", "What you learn", False),
    ("10", CHINESE, "README.zh-CN.md", "本章学到什么", False),
])
def test_a_chapter_page_shows_its_readme_in_the_readers_language(real_hub_client, number, headers, shown, words,
                                                                 untranslated):
    page = real_hub_client.get(f"/chapter/{number}/", headers=headers).get_data(as_text=True)
    readme = page[page.index('<section id="readme">'):]
    assert f"<h2>{shown}</h2>" in readme and words in readme
    assert ('id="untranslated"' in readme) == untranslated


@pytest.mark.parametrize("path, here", [
    ("/chapter/01/", "/chapter/01/?lang={}#readme"),
    ("/file/README.md", "/file/README.md?lang={}"),
    ("/file/05_broadcast/README.md", "/file/05_broadcast/README.md?lang={}"),
    ("/file/05_broadcast/README.zh-CN.md", "/file/05_broadcast/README.md?lang={}"),  # the twin asked for by name
])
@pytest.mark.parametrize("headers", [CHINESE, {}])
def test_the_readmes_english_chinese_line_switches_the_hubs_language(real_hub_client, path, here, headers):
    page = real_hub_client.get(path, headers=headers).get_data(as_text=True)
    article = page[page.index("<article>"):]
    assert re.findall(r'<a href="([^"]+)">(English|中文)</a>', article)[:2] == \
        [(here.format("en"), "English"), (here.format("zh-CN"), "中文")]
    response = real_hub_client.get(here.format("zh-CN").partition("#")[0])
    assert response.status_code == 302 and response.location == here.partition("?")[0]


@pytest.mark.parametrize("path, headers, shown", [
    ("README.md", CHINESE, "README.zh-CN.md"),
    ("README.md", {}, "README.md"),
    ("README.zh-CN.md", {}, "README.zh-CN.md"),
    ("TROUBLESHOOTING.md", CHINESE, "TROUBLESHOOTING.zh-CN.md"),
    ("bench/README.md", CHINESE, "bench/README.zh-CN.md"),
    ("CONTRIBUTING.md", CHINESE, "CONTRIBUTING.md"),  # English only: shown with a note
    ("10_redis_pubsub/nginx.conf", CHINESE, "10_redis_pubsub/nginx.conf"),
])
def test_a_linked_page_opens_in_the_readers_language(real_hub_client, path, headers, shown):
    page = real_hub_client.get(f"/file/{path}", headers=headers).get_data(as_text=True)
    assert f"<h1>{shown}</h1>" in page
    assert ('id="untranslated"' in page) == (shown == "CONTRIBUTING.md")


@pytest.mark.parametrize("page, href, address", [
    ("01_setup/README.zh-CN.md", "../05_broadcast/README.zh-CN.md#x", "/file/05_broadcast/README.md#x"),
    ("01_setup/README.md", "../05_broadcast/README.md#x", "/file/05_broadcast/README.md#x"),
    ("README.zh-CN.md", "bench/README.md", "/file/bench/README.md"),
    ("README.zh-CN.md", "README.md", "/file/README.md"),  # shown with no language line to switch
    ("01_setup/README.zh-CN.md", "README.zh-CN.md#x", "/file/01_setup/README.md#x"),
])
def test_links_to_a_page_or_its_twin_lead_to_the_same_address(page, href, address):
    assert hub_module.file_link(ROOT / page, href) == address


@pytest.mark.parametrize("path", ["//elsewhere.example/", "/\\elsewhere.example/"])
def test_the_language_switch_never_sends_the_browser_elsewhere(real_hub_client, path):
    response = real_hub_client.get("/", query_string={"lang": "en"}, environ_overrides={"PATH_INFO": path})
    assert "elsewhere" not in response.headers.get("Location", "")


CHINESE_PAGES = sorted([*ROOT.glob("*.zh-CN.md"), *ROOT.glob("*/*.zh-CN.md")])


@pytest.mark.parametrize("twin", CHINESE_PAGES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_a_chinese_page_names_the_hubs_buttons_as_the_chinese_hub_shows_them(twin):
    # Chapter 10's said "the **Stop Redis** button", which the hub in Chinese labels "停止 Redis".
    translated = {message.id: message.string for message in read_catalogue() if message.id and message.string}
    named_in_english = [name for name in re.findall(r"\*\*([^*]+)\*\*", twin.read_text(encoding="utf-8"))
                        if name in translated]
    assert named_in_english == []
