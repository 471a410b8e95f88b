"""Notebooks executed by nbclient in a real IPython kernel: this interpreter, this kernelab.

The kernel is ipykernel's ``python3`` started with ``sys.executable`` (jupyter_client puts the
running interpreter in place of the spec's ``python``), ``PYTHONPATH`` naming the kernelab
being tested, and no ``MPLBACKEND``, so matplotlib picks the inline backend as in Jupyter.
"""

import os
import sys
from pathlib import Path

import kernelab

nbclient = __import__("pytest").importorskip("nbclient")
nbformat = __import__("pytest").importorskip("nbformat")
__import__("pytest").importorskip("ipykernel")

SOURCE = Path(kernelab.__file__).resolve().parents[1]


def kernel_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
    return env


def execute(notebook, folder: Path, timeout: int = 60):
    """Run every cell of ``notebook`` (a NotebookNode) with ``folder`` as working directory;
    returns the notebook with its outputs. A cell that raises fails the run."""
    client = nbclient.NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    return client.execute(env=kernel_env())


def from_cells(*sources: str):
    """A notebook of code cells, one per source."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def outputs_of(cell, kind: str) -> list:
    """The ``kind`` ("image/png", "text/html", "text/plain") payloads a cell output."""
    return [o["data"][kind] for o in cell.get("outputs", []) if kind in o.get("data", {})]


def interpreter_cell() -> str:
    return "import sys; print(sys.executable)"


def same_interpreter(cell) -> bool:
    printed = "".join(o.get("text", "") for o in cell["outputs"] if o["output_type"] == "stream")
    return Path(printed.strip()).resolve() == Path(sys.executable).resolve()
