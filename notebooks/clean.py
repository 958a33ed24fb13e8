"""Strip a notebook to what a learner writes: no outputs, no execution counts, no cell metadata.

``python notebooks/clean.py`` (or ``make notebooks-clean``) cleans every notebook in
place; the suite checks that each committed notebook is already clean.
"""
import sys
from pathlib import Path

import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def clean(notebook):
    """Return ``notebook`` without outputs, execution counts and per-machine metadata."""
    for cell in notebook.cells:
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    # The Python version and Jupyter's view state differ from one machine to the next.
    notebook.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    return notebook


def main(paths):
    """Clean the given notebooks in place, or every notebook next to this file."""
    for path in paths or sorted(Path(__file__).parent.glob("*.ipynb")):
        nbformat.write(clean(nbformat.read(path, as_version=4)), path)


if __name__ == "__main__":
    main(sys.argv[1:])
