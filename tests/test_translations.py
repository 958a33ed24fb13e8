"""Chinese twins (X.zh-CN.md beside X.md) keep the headings, code blocks and links of their English page."""

import collections
import itertools
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

from tutorial import ROOT

TWIN_SUFFIX = ".zh-CN.md"
# English pages whose twin is still to be written (issue 16): writing one is deleting its line here.
PENDING = set()  # every learner's page has its twin
# Written for contributors, who read the code's English anyway.
ENGLISH_ONLY = {"CONTRIBUTING.md"}
MARKDOWN = MarkdownIt("commonmark").enable("table")
# How a comment starts in a code block of each language the pages use; a twin translates its comments and keeps
# the code. A block of any other kind (a terminal's output, a diagram) stays byte for byte.
COMMENT_MARKS = {"bash": "#", "python": "#", "ini": "#", "nginx": "#", "js": "//"}


def twin(path):
    """The Chinese twin's path of the English page ``path``: README.md's is README.zh-CN.md."""
    return path.with_name(path.name.removesuffix(".md") + TWIN_SUFFIX)


def english(path):
    """The English page of ``path``, itself if it is not a twin."""
    return path.with_name(path.name.removesuffix(TWIN_SUFFIX) + ".md") if path.name.endswith(TWIN_SUFFIX) else path


def english_markdown():
    """Every English Markdown file of the repository, relative to its root, installed packages and hidden
    folders left out."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name != "node_modules"]
        found += [Path(folder, name).relative_to(ROOT).as_posix() for name in files
                  if name.endswith(".md") and not name.endswith(TWIN_SUFFIX)]
    return sorted(found)


# What a learner reads: every README.md, every page of a chapter's folder (10_redis_pubsub/RUNNING.md),
# and the root's other pages (TROUBLESHOOTING.md) but ENGLISH_ONLY.
ENGLISH = english_markdown()
LEARNERS_PAGES = [path for path in ENGLISH
                  if path.endswith("README.md") or re.fullmatch(r"\d\d_[^/]+/[^/]+\.md", path)
                  or ("/" not in path and path not in ENGLISH_ONLY)]
TWINNED = [path for path in ENGLISH if twin(ROOT / path).is_file()]


def slug(title):
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens (CJK kept)."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def outline(path):
    """A Markdown file's headings as (level, anchor), its code blocks as (info, text), and its link targets."""
    tokens = MARKDOWN.parse(path.read_text(encoding="utf-8"))
    headings, blocks, links = [], [], []
    for opening, inline in itertools.pairwise(tokens):
        if opening.type == "heading_open":
            headings.append((int(opening.tag[1]), slug("".join(child.content for child in inline.children))))
    for token in tokens:
        if token.type in ("fence", "code_block"):
            blocks.append((token.info, token.content))
        for child in token.children or ():
            if child.type == "link_open":
                links.append(child.attrs["href"])
    return headings, blocks, links


def code(block):
    """A fenced block as (info, its lines without their comments, which lines carry one): what a twin keeps."""
    info, text = block
    mark = COMMENT_MARKS.get(info)
    if not mark:
        return info, text, None
    # A comment starts the line or follows a space, and its mark is followed by a space or the line's end
    # (so a URL's "#anchor" or a "//" inside one is code).
    comment = re.compile(rf"(?:^|\s+){re.escape(mark)}(?:\s.*)?$")
    lines = [comment.split(line, maxsplit=1) for line in text.splitlines()]
    return info, [parts[0] for parts in lines], [len(parts) > 1 for parts in lines]


def target(page, href):
    """Where a link from ``page`` leads, language aside: (path or URL, index of the heading it names or None).

    A Chinese page links to the Chinese twin of a page that has one, so both languages lead to the same
    place here; an anchor counts as the position of its heading, since the titles themselves are translated."""
    parts = urlsplit(unquote(href))  # markdown-it percent-encodes non-ASCII anchors
    if parts.scheme or parts.netloc:
        return href, None
    file = (page.parent / parts.path).resolve() if parts.path else page
    if page.name.endswith(TWIN_SUFFIX) and file.suffix == ".md" and not file.name.endswith(TWIN_SUFFIX):
        assert not twin(file).is_file(), f"{page.relative_to(ROOT)}: {href} has a Chinese twin to link"
    if not parts.fragment:
        return os.path.relpath(english(file), ROOT), None
    anchors = [anchor for _, anchor in outline(file)[0]]
    assert parts.fragment in anchors, f"{page.relative_to(ROOT)}: {href} names no heading of {file.name}"
    return os.path.relpath(english(file), ROOT), anchors.index(parts.fragment)


def links(page):
    """Where the links below a page's language switch lead, as ``target`` says, counted."""
    return collections.Counter(target(page, href) for href in outline(page)[2][2:])


def test_every_page_has_a_twin_or_is_pending():
    """A new README or root page without a twin, or a pending one that got its twin, updates PENDING."""
    assert set(LEARNERS_PAGES) - set(TWINNED) == PENDING


@pytest.mark.parametrize("path", TWINNED)
def test_twin_matches_english(path):
    """Same switch line, heading levels, code blocks (comments translated, the code byte for byte), and link
    targets."""
    original, chinese = ROOT / path, twin(ROOT / path)
    # Under each page's title, in both languages: the reader switches with one click.
    switch = f"[English]({original.name}) | [中文]({chinese.name})"
    for page in original, chinese:
        assert page.read_text(encoding="utf-8").splitlines()[2] == switch, f"{page.relative_to(ROOT)}, line 3"
    (english_headings, english_blocks, _), (chinese_headings, chinese_blocks, _) = outline(original), outline(chinese)
    assert [level for level, _ in chinese_headings] == [level for level, _ in english_headings]
    assert [code(block) for block in chinese_blocks] == [code(block) for block in english_blocks]
    assert links(chinese) == links(original)
