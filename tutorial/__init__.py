"""The tutorial's launcher and the helpers its tests, notebooks and benchmark share.

Chapter apps never import this package: each ``NN_name/app.py`` stays runnable on
its own. What would otherwise be copied into every chapter (finding a free port,
starting a chapter as a process, waiting until it serves, stopping it) lives here.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in ROOT.glob("[0-9][0-9]_*") if (p / "app.py").is_file())
ASYNC_MODES = ("threading", "eventlet")


def chapter_dir(name):
    """The folder of a chapter named by number or folder name: "1", "01" or "01_setup"."""
    for path in CHAPTERS:
        number = path.name.split("_", 1)[0]
        if name in (path.name, number) or (name.isdigit() and int(name) == int(number)):
            return path
    known = ", ".join(p.name for p in CHAPTERS)
    raise LookupError(f"no chapter {name!r}; the chapters are: {known}")
