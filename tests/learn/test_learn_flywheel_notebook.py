"""notebooks/flywheel.ipynb runs end to end: explore -> traces -> OPE -> fit from logs -> shadow -> promote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "flywheel.ipynb"


@pytest.mark.slow
def test_flywheel_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("AGENTROUTE_NB_TASKS", "60")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=dict(os.environ))
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for expected in ("60 tasks", "shadow: {'cheapest'", "shadow:cheapest", "fitted logged:q-linear on 60 tasks",
                     "candidate shadow:logged:q-linear", "verdict: ", "candidate run for real"):
        assert expected in outputs, expected
