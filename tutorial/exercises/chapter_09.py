"""Chapter 09's exercises (09_testing/README.md, "Now you try"): tests that prove something.

A test proves a behaviour only if it fails without it. Each check runs your test file twice: against
the chapter as it is (it must pass), then against a copy of the chapter with that one behaviour
broken (it must fail). The copy lives in ``.check/`` at the repository's root (ignored by git), so
the same fixtures (``chapter``, ``app``, ``client``) serve it.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import ROOT
from . import exercise

TESTS = "test_now_you_try.py"


def outcome(folder, keyword):
    """pytest's exit code and last line for the learner's tests matching ``keyword`` in ``folder``."""
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-k", keyword,
                          str(folder / TESTS)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return run.returncode, (run.stdout.strip().splitlines() or [""])[-1]


def proves(chapter, keyword, broken, unbroken, behaviour):
    """Fail with a sentence unless the learner's tests named ``*keyword*`` pass, and fail once ``broken``."""
    folder = Path(chapter.__file__).parent
    assert (folder / TESTS).is_file(), f"there is no {folder.name}/{TESTS} yet: write your tests there"
    code, last = outcome(folder, keyword)
    assert code != 5, f"{folder.name}/{TESTS} has no test with {keyword!r} in its name"
    assert code == 0, f"your test for {behaviour} fails against the chapter as it is: {last}"
    mutant = ROOT / ".check" / f"mutant-{os.getpid()}" / folder.name
    shutil.rmtree(mutant, ignore_errors=True)
    shutil.copytree(folder, mutant, ignore=shutil.ignore_patterns("instance", "__pycache__"))
    source = (mutant / "app.py").read_text()
    assert unbroken in source, f"the check cannot break {behaviour}: app.py no longer has {unbroken!r}"
    (mutant / "app.py").write_text(source.replace(unbroken, broken))
    try:
        code, last = outcome(mutant, keyword)
    finally:
        shutil.rmtree(mutant.parent, ignore_errors=True)
    assert code != 0, f"your test still passes when {behaviour} is broken: it does not prove it yet"


@exercise("Prove that the reply says who you logged in as")
def says_who(chapter):
    proves(chapter, "logged_in_as", unbroken='"username": session.get("username")', broken='"username": None',
           behaviour="the reply carrying the name you logged in as")


@exercise("Prove that an empty message is refused")
def refuses_empty(chapter):
    proves(chapter, "empty", unbroken="or not text.strip()", broken="",
           behaviour="'my_event' refusing an empty 'data'")
