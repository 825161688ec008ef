"""Execute every notebook in notebooks/ top to bottom, and check it is committed clean."""

import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["01_quickstart", "02_ranking_rules", "03_vault_pnl", "04_oct10_case_study",
         "05_validation"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, monkeypatch):
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits the environment
    # ipykernel's built-in "python3" kernelspec runs sys.executable, i.e. this environment
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    print(f"{name}: {elapsed:.1f} s")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and code[0].source.lstrip().startswith("N_PATHS = ")
    for cell in code:
        assert cell.outputs == [], f"{name}: a code cell has outputs"
        assert cell.execution_count is None, f"{name}: a code cell has an execution count"


REPO = NOTEBOOKS.parent
CITED_FILE = re.compile(r"`([\w./-]+\.(?:md|py|toml|csv|ipynb))`")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_cites_only_files_in_the_repository(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for cited in CITED_FILE.findall(cell.source):
            assert (REPO / cited).exists() or (NOTEBOOKS / cited).exists(), (
                f"{name} cites {cited}, which is not in the repository")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_tables_of_results_are_computed_not_typed(name):
    # A table written in a markdown cell goes stale when the model changes; a code cell
    # that renders it (IPython.display.Markdown) from the notebook's values cannot.
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            typed = [line for line in cell.source.splitlines() if line.lstrip().startswith("|")]
            assert not typed, f"{name}: a markdown cell holds a typed table: {typed[0]}"
