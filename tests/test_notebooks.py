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
