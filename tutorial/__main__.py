"""``python -m tutorial run [CHAPTER]``: run one chapter as a learner would."""
import argparse
import os
import sys

from . import CHAPTERS, chapter_dir


def run_chapter(name):
    """Replace this process with the chapter's own ``python app.py``, so Ctrl-C reaches it directly."""
    folder = chapter_dir(name)
    os.chdir(folder)
    os.execv(sys.executable, [sys.executable, "app.py"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tutorial", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a chapter (PORT, ASYNC_MODE and FLASK_* settings come from the environment)")
    run.add_argument("chapter", nargs="?", default=CHAPTERS[0].name, help="e.g. 01 or 01_setup")
    args = parser.parse_args(argv)
    try:
        run_chapter(args.chapter)
    except LookupError as error:
        parser.exit(2, f"{error}\n")


if __name__ == "__main__":
    main()
