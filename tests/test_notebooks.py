"""Every notebook runs top to bottom (one-epoch trainings: TF_ECG_EPOCHS=1; TF_ECG_QUICK=1: small subsets)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, shared_data, monkeypatch):
    monkeypatch.setenv("TF_ECG_DATA_ROOT", str(shared_data))
    monkeypatch.setenv("TF_ECG_EPOCHS", "1")
    monkeypatch.setenv("TF_ECG_QUICK", "1")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_executed_on_the_full_data(path):
    """Stored by notebooks/execute.py: every code cell ran once, in order, without an error,
    on the full data (not the tests' quick subsets), and the figures are kept."""
    notebook = nbformat.read(path, as_version=4)
    execution = notebook.metadata.get("tf_ecg_execution")
    assert execution, f"{path.name} was not stored by notebooks/execute.py"
    assert "TF_ECG_QUICK" not in execution["environment"]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)
