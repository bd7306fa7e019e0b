"""The notebooks are stored without outputs and run top to bottom (nbclient), on small settings
given by replacing each notebook's cell tagged ``parameters``."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency")
nbclient = pytest.importorskip("nbclient", reason="nbclient is a dev dependency")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: per notebook, the parameters that make it small enough for the test suite
SMALL = {
    "heatmaps.ipynb": {
        "RUN_DIR": "runs/tiny",
        "TRAIN_ENVS": 8,
        "TRAIN_STEPS": 512,
        "EVAL_EPISODES": 8,
        "EPISODES": 8,
    },
    "profiling.ipynb": {
        "SIZES": (16, 64),
        "STEPS": 3,
        "PROFILE_ENVS": 64,
        "COMPILE_ENV": "AvellanedaStoikovVectorEnv",
        "TRAIN_ENVS": 8,
        "TRAIN_STEPS": 256,
    },
    "training.ipynb": {
        "NUM_ENVS": 8,
        "TOTAL_STEPS": 512,
        "EPISODE_STEPS": 20,
        "EVAL_EPISODES": 8,
        "DEVICE": "cpu",
    },
}


def test_every_notebook_is_tested_and_stored_without_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL)
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def with_parameters(nb, values: dict):
    """Replace the cell tagged ``parameters`` with ``values``; every name must exist there."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    defined = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    assert set(values) <= defined, f"unknown parameters {set(values) - defined}"
    cell.source += "\n# overridden by the test suite\n" + "\n".join(
        f"{k} = {v!r}" for k, v in values.items()
    )
    return nb


@pytest.mark.parametrize("name", sorted(SMALL))
def test_notebook_runs(name, tmp_path):
    nb = with_parameters(nbformat.read(NOTEBOOKS / name, as_version=4), SMALL[name])
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell and traceback
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    plots = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert plots, "no plotly figure was displayed"
