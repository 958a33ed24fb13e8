"""Every "Now you try" exercise, both ways: the chapter as shipped fails its check, its solution passes it.

So no check can pass vacuously, and no solution (``solutions/NN_name/N.patch``) can rot: a chapter
that changes under a solution makes its patch fail to apply, and this test says which.
"""
import shutil
import subprocess

import pytest

from tutorial import CHAPTERS, ROOT
from tutorial.exercises import exercises_of

EXERCISES = [(folder, exercise) for folder in CHAPTERS for exercise in exercises_of(folder)]
ids = [f"{folder.name[:2]}-{exercise.number}" for folder, exercise in EXERCISES]


@pytest.fixture
def solved(request):
    """A copy of a chapter with one exercise's solution applied, inside the repository (the fixtures reach it)."""
    def solved(folder, number):
        copy = ROOT / ".check" / f"solution-{folder.name}-{number}" / folder.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("instance", "__pycache__", "test_now_you_try.py"))
        request.addfinalizer(lambda: shutil.rmtree(copy.parent, ignore_errors=True))
        patch = ROOT / "solutions" / folder.name / f"{number}.patch"
        applied = subprocess.run(["patch", "--batch", "--silent", "-p1", "-d", str(copy), "-i", str(patch)],
                                 capture_output=True, text=True)
        assert applied.returncode == 0, f"{patch.relative_to(ROOT)} no longer applies: {applied.stdout}{applied.stderr}"
        return copy
    return solved


@pytest.mark.parametrize("folder, exercise", EXERCISES, ids=ids)
def test_the_chapter_as_shipped_does_not_pass_the_check(folder, exercise):
    assert (folder / "test_now_you_try.py").exists() or exercise.run(folder) is not None


@pytest.mark.parametrize("folder, exercise", EXERCISES, ids=ids)
def test_the_solution_passes_the_check(solved, folder, exercise):
    assert exercise.run(solved(folder, exercise.number)) is None


def test_every_chapter_has_exercises_in_its_readme():
    for folder in CHAPTERS:
        titles = [exercise.title for exercise in exercises_of(folder)]
        assert 2 <= len(titles) <= 3, folder.name
        for readme in ("README.md", "README.zh-CN.md"):
            text = (folder / readme).read_text(encoding="utf-8")
            missing = [title for title in titles if title not in text]
            assert not missing, f"{folder.name}/{readme} does not show the exercises {missing}"
