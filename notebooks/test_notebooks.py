"""Every notebook runs top to bottom in a fresh kernel, and is committed without outputs."""
import copy
import os
import re
import runpy
import secrets
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient

HERE = Path(__file__).parent
NOTEBOOKS = sorted(HERE.glob("*.ipynb"))
clean = runpy.run_path(str(HERE / "clean.py"))["clean"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda path: path.stem)
def notebook(request):
    """One committed notebook, as nbformat reads it."""
    return nbformat.read(request.param, as_version=4)


def test_notebook_runs(notebook):
    """Run it as Jupyter would: the asserts in its cells hold, and nothing goes to stderr.

    A cell that raises fails the test (nbclient raises ``CellExecutionError``); a
    notebook that only prints or logs a problem fails the stderr check.
    """
    # Each notebook starts the servers it needs: a SERVER_URL meant for one notebook must not reach the others.
    # Every process it starts inherits a mark, so that a notebook failing before its last cell (which stops
    # its servers; nbclient stops the kernel, so atexit never runs) leaves nothing behind.
    mark = secrets.token_hex(8)
    env = {name: value for name, value in os.environ.items() if name != "SERVER_URL"} | {"TUTORIAL_NOTEBOOK": mark}
    try:
        NotebookClient(notebook, kernel_name="python3", timeout=60,
                       resources={"metadata": {"path": str(HERE)}}).execute(env=env)
    finally:
        stop_processes_marked(mark)
    stderr = [output.text for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("name") == "stderr"]
    assert not stderr, "".join(stderr)


def stop_processes_marked(mark):
    """Kill whatever a notebook's kernel started and left running (its environment carries ``mark``)."""
    left = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("TUTORIAL_NOTEBOOK") == mark:
                process.kill()
                left.append(process)
        except psutil.Error:
            pass  # gone meanwhile, or not ours to read
    psutil.wait_procs(left, timeout=5)


def test_notebook_ends_with_try_this(notebook):
    """Its last cell is "Try this": one or two small changes to make, and what the reader should then see."""
    last = notebook.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Try this\n"), "end with a Try this cell"


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_the_api_table_names_cells_that_exist(readme):
    """Each cell that the README's table of the client API points to, "[N](N_name.ipynb) *its heading*", exists."""
    cited = re.findall(r"\]\((\d_\w+\.ipynb)\) \*(.+?)\*(?= \||;|；)", (HERE / readme).read_text(encoding="utf-8"))
    assert len(cited) > 20, "the table of the client API is missing"
    for name, heading in cited:
        cells = nbformat.read(HERE / name, as_version=4).cells
        headings = [line for cell in cells if cell.cell_type == "markdown" for line in cell.source.splitlines()]
        assert f"## {heading}" in headings, f"{readme}: {name} has no cell headed {heading!r}"


def test_notebook_is_committed_clean(notebook):
    """No outputs, execution counts or per-machine metadata: run `make notebooks-clean` before committing."""
    assert notebook == clean(copy.deepcopy(notebook)), "outputs or metadata left in: run `make notebooks-clean`"
