"""Rough edges a newcomer hit (issue 13) that need no server; the others are seen on the hub (test_hub.py)."""
import os
import re
import subprocess

import pytest

from conftest import load_chapter
from tutorial import CHAPTERS, ROOT


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
