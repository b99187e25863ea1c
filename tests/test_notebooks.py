"""The notebooks are committed clean: valid nbformat, no outputs (the nbstripout rule) and one
papermill ``parameters`` cell. Executing them is nbmake's job (``--nbmake`` in pyproject)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
# what running a notebook adds (Jupyter, ipywidgets, papermill): notebook and cell metadata
RUN_METADATA = {"widgets", "signature", "papermill"}
RUN_CELL_METADATA = {"execution", "ExecuteTime", "collapsed", "scrolled", "papermill"}


def notebook_problems(path: Path) -> list[str]:
    """Why ``path`` may not be committed, one line each (empty: it may)."""
    try:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        nbformat.validate(nb)
    except (nbformat.ValidationError, ValueError, OSError) as e:  # bad JSON: a ValueError
        return [f"{path.name}: not valid nbformat: {str(e).splitlines()[0]}"]
    if nb.nbformat != 4:
        return [f"{path.name}: nbformat {nb.nbformat}, expected 4"]
    problems = [
        f"{path.name}: metadata.{k} (a run's state)" for k in RUN_METADATA & set(nb.metadata)
    ]
    tagged = []
    for i, cell in enumerate(nb.cells):
        where = f"{path.name}: cell {i}"
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags:
            tagged.append(i)
        if "injected-parameters" in tags:
            problems.append(f"{where}: papermill's injected-parameters cell (an output notebook)")
        problems += [f"{where}: metadata.{k}" for k in RUN_CELL_METADATA & set(cell.metadata)]
        if cell.cell_type != "code":
            continue
        if cell.outputs:
            problems.append(f"{where}: {len(cell.outputs)} output(s); strip them (nbstripout)")
        if cell.execution_count is not None:
            problems.append(f"{where}: execution_count {cell.execution_count}, expected null")
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    if len(tagged) != 1:
        problems.append(f"{path.name}: {len(tagged)} cells tagged 'parameters', expected 1")
    elif not code or tagged[0] != code[0]:
        problems.append(
            f"{path.name}: the 'parameters' cell (cell {tagged[0]}) is not the first code cell"
        )
    return problems


def test_there_are_notebooks() -> None:
    """The glob below finds the notebooks, so the parametrized checks are not vacuous."""
    assert len(PATHS) >= 4, PATHS


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_notebook_is_committed_clean(path: Path) -> None:
    """Each notebook is valid nbformat 4, without outputs, with one parameters cell first."""
    problems = notebook_problems(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_notebook_is_listed_in_readme(path: Path) -> None:
    """notebooks/README.md names every notebook."""
    assert f"`{path.name}`" in (NOTEBOOKS / "README.md").read_text()


def _executed_copy(src: Path) -> dict:
    """``src`` as plain JSON, its first code cell as if run: an output and a count."""
    nb = json.loads(src.read_text())
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first_code["execution_count"] = 1
    first_code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
    return nb


def test_the_check_catches_outputs_and_tags(tmp_path: Path) -> None:
    """An output, a count, two or no parameters cells, bad JSON or bad nbformat is refused."""
    src = PATHS[0]
    dirty = _executed_copy(src)
    (tmp_path / "outputs.ipynb").write_text(json.dumps(dirty))
    problems = notebook_problems(tmp_path / "outputs.ipynb")
    assert any("output(s)" in p for p in problems) and any(
        "execution_count 1" in p for p in problems
    )

    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("tags", None)
    (tmp_path / "untagged.ipynb").write_text(json.dumps(nb))
    assert notebook_problems(tmp_path / "untagged.ipynb") == [
        "untagged.ipynb: 0 cells tagged 'parameters', expected 1"
    ]
    for cell in nb["cells"]:
        cell.setdefault("metadata", {})["tags"] = ["parameters"]
    (tmp_path / "twice.ipynb").write_text(json.dumps(nb))
    assert any(
        "cells tagged 'parameters'" in p for p in notebook_problems(tmp_path / "twice.ipynb")
    )

    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    assert notebook_problems(tmp_path / "broken.ipynb")[0].startswith("broken.ipynb: not valid")
    nb = json.loads(src.read_text())
    del nb["cells"][0]["cell_type"]
    (tmp_path / "invalid.ipynb").write_text(json.dumps(nb))
    assert notebook_problems(tmp_path / "invalid.ipynb")[0].startswith("invalid.ipynb: not valid")
