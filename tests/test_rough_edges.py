"""Rough edges a newcomer hit (issues 13 and 23) that need no server; the others are seen on the hub (test_hub.py)."""
import os
import re
import subprocess
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from tutorial import CHAPTERS, ROOT
from tutorial.testing import load_chapter


@pytest.mark.parametrize("folder", CHAPTERS, ids=[c.name for c in CHAPTERS])
def test_every_page_names_an_icon_from_the_static_folder(folder):
    # Without one, browsers ask for /favicon.ico, which no chapter serves: a 404 in every console.
    page = (folder / "templates" / "index.html").read_text(encoding="utf-8")
    icon = re.search(r"""<link rel="icon" href="{{ url_for\('static', filename='([^']+)'\) }}">""", page)
    assert icon and (ROOT / "static" / icon[1]).is_file()


def test_the_icon_is_served():
    app = load_chapter(CHAPTERS[0]).create_app(ASYNC_MODE="threading", TESTING=True, SECRET_KEY="test")
    with app.test_client().get("/static/favicon.svg") as response:
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"


def test_make_notebooks_allows_root_only_as_root():
    dry_run = subprocess.run(["make", "-n", "notebooks"], cwd=ROOT, capture_output=True, text=True, check=True)
    [command] = [line for line in dry_run.stdout.splitlines() if "jupyter lab" in line]
    assert ("--allow-root" in command) == (os.geteuid() == 0)


# Elements that have no end tag in HTML.
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
TEMPLATES = sorted([*ROOT.glob("[0-9][0-9]_*/templates/*.html"), *ROOT.glob("tutorial/templates/*.html")])


class TagNesting(HTMLParser):
    """Every end tag of a page that closes something other than the innermost open element."""

    def __init__(self):
        super().__init__()
        self.open, self.misplaced = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID_ELEMENTS:
            self.open.append((tag, self.getpos()[0]))

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            self.open.pop()
        else:
            self.misplaced.append(f"</{tag}> on line {self.getpos()[0]}, inside {self.open[-1] if self.open else None}")


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.relative_to(ROOT).as_posix() for t in TEMPLATES])
def test_every_template_closes_what_it_opens_in_order(template):
    # A stray end tag is silently dropped or closes an outer element early, depending on the browser:
    # the page still looks right, so only a count catches it. Optional end tags (</p>, </li>) are written.
    nesting = TagNesting()
    nesting.feed(template.read_text(encoding="utf-8"))
    nesting.close()
    assert nesting.misplaced == [] and nesting.open == []


def emoji(text):
    """The emoji characters of ``text`` (pictographs, symbols and dingbats), each once, in order."""
    return list(dict.fromkeys(re.findall(r"[\u2600-\u27bf\U0001f000-\U0001faff]", text)))


PAGE_EMOJI = [(template, character) for template in TEMPLATES
              for character in emoji(template.read_text(encoding="utf-8"))]


@pytest.mark.parametrize(("template", "character"), PAGE_EMOJI,
                         ids=[f"{t.relative_to(ROOT).as_posix()}-U+{ord(c):X}" for t, c in PAGE_EMOJI])
def test_every_emoji_of_a_page_is_drawn_not_a_box(browser, template, character):
    # Without a font that has the character, Chromium draws the font's "missing glyph" box, the same box for
    # every missing character: so the emoji, drawn as the page draws text, must not look like a character
    # that no font has (U+10FFFD, the last private-use code point).
    page = browser.new_page()
    try:
        stylesheet = (ROOT / "static" / "tutorial.css").read_text(encoding="utf-8")
        glyph = "display: inline-block; width: 3rem; height: 3rem; font-size: 2rem; line-height: 3rem"
        page.set_content(f'<style>{stylesheet}</style><span id="emoji" style="{glyph}">{character}</span>'
                         f'<span id="missing" style="{glyph}">\U0010fffd</span>')
        drawn, missing = (page.locator(f"#{name}").screenshot() for name in ("emoji", "missing"))
        looks_missing = drawn == missing
    finally:
        page.close()
    assert not looks_missing, f"{character} is drawn as a box: install a colour emoji font (make test does)"


MARKDOWN_PAGES = sorted(path for path in ROOT.rglob("*.md")
                        if not {".venv", "node_modules"} & set(path.relative_to(ROOT).parts))
# pytest run as a command: not pytest-xdist, pytest.ini, "import pytest" in a Python block.
PYTEST_COMMAND = re.compile(r"(?<![\w./-])pytest(?![\w.-])")


def commands(page):
    """The inline code of a Markdown page and the lines of its shell blocks: where a reader copies commands from."""
    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(page.read_text(encoding="utf-8")):
        if token.type == "fence" and token.info in ("bash", "sh", ""):
            found += token.content.splitlines()
        found += [child.content for child in token.children or () if child.type == "code_inline"]
    return found


@pytest.mark.parametrize("page", MARKDOWN_PAGES, ids=[p.relative_to(ROOT).as_posix() for p in MARKDOWN_PAGES])
def test_every_page_runs_the_tests_one_way(page):
    # Bare `pytest` is not on the PATH unless the venv is activated, which no page asks for: the form that
    # works as printed, from the repository root after set-up, is the venv's Python running pytest.
    other_forms = [command for command in commands(page) for match in PYTEST_COMMAND.finditer(command)
                   if not command[:match.start()].endswith(".venv/bin/python -m ")]
    assert other_forms == []


# `VAR=value python app.py`: an environment variable, then a chapter's own program, is a line to paste into a shell.
CHAPTER_PROGRAM_WITH_SETTINGS = re.compile(r"^(?:[A-Z_]+=\S*\s+)+python3?\s+(?:app|publish)\.py\b")


@pytest.mark.parametrize("page", MARKDOWN_PAGES, ids=[p.relative_to(ROOT).as_posix() for p in MARKDOWN_PAGES])
def test_every_page_runs_a_chapters_program_with_the_venvs_python(page):
    # A bare `python` in a new terminal has none of the project's packages (issue 23.1): the chapter's
    # folder is where these run, so the venv's Python is `../.venv/bin/python`.
    assert [command for command in commands(page) if CHAPTER_PROGRAM_WITH_SETTINGS.match(command.strip())] == []
