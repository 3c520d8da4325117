from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "train_a_router.ipynb"


@pytest.mark.slow
def test_train_a_router_notebook_executes(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("AGENTROUTE_NB_TIMESTEPS", "4096")
    monkeypatch.setenv("AGENTROUTE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute(env=dict(os.environ))
    outputs = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "AIQ  ppo" in outputs and "gap closed" in outputs
    # the conclusion says what the figures say, whichever way they fall
    m = re.search(r"conclusion: PPO's AIQ ([0-9.]+) is (above|below) the zero router's ([0-9.]+)", outputs)
    assert m is not None, outputs
    assert (float(m.group(1)) > float(m.group(3))) == (m.group(2) == "above")
    for cell in nb.cells:  # no claim written in advance
        assert "beats every simpler choice" not in cell.source
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
