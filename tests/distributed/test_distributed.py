"""Data-parallel training on MPI equals one process trained on the whole batch."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kernelab.distributed import DistributedSampler

SCRIPT = Path(__file__).with_name("ddp_script.py")


def _mpiexec() -> str:
    pytest.importorskip("mpi4py")
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
        "mpiexec"
    )
    if not found:
        pytest.skip("no mpiexec (pip install 'kernelab[mpi]')")
    return found


def _run(tmp_path, mode: str, timeout: float = 120):
    env = dict(os.environ, KERNELAB_DIST_TIMEOUT="10", OMP_NUM_THREADS="1")
    command = [_mpiexec(), "-n", "2", sys.executable, str(SCRIPT), str(tmp_path), mode]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_ranks_equal_one_process_on_the_whole_batch(tmp_path):
    result = _run(tmp_path, "train")
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import ddp_script
    finally:
        sys.path.pop(0)
    single = ddp_script.train(ddp_script.make_model()).state_dict()
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(2)]
    for key, value in single.items():
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])  # every rank agrees
        np.testing.assert_allclose(ranks[0][key], value.numpy(), rtol=1e-5, atol=1e-6)


def test_a_dead_rank_ends_the_run_with_an_error_instead_of_a_hang(tmp_path):
    start = time.monotonic()
    result = _run(tmp_path, "die", timeout=90)
    assert result.returncode != 0
    assert time.monotonic() - start < 90
    assert not (tmp_path / "rank0.npz").exists()  # rank 0 did not finish as if nothing happened


@pytest.mark.parametrize("length,world", [(10, 2), (11, 2), (12, 3), (7, 4)])
def test_sampler_shards_are_disjoint_and_rebuild_the_global_order(length, world):
    shards = [list(DistributedSampler(range(length), world, r, seed=5)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    merged = [shard[i] for i in range(len(shards[0])) for shard in shards]
    order = np.random.default_rng([5, 0]).permutation(length)
    assert merged[:length] == order.tolist()  # local batches of B/W make the global batch
    if length % world == 0:
        assert sorted(merged) == list(range(length))


def test_sampler_changes_order_with_the_epoch():
    sampler = DistributedSampler(range(20), 2, 0, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first


def _world_in_a_child(env: dict) -> subprocess.CompletedProcess:
    """A fresh process's world size and whether it loaded MPI, or its error."""
    code = (
        "import sys; from kernelab import distributed as d; "
        "print(d.get_world_size(), 'mpi4py.MPI' in sys.modules)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )


def test_outside_mpiexec_the_world_is_one_rank_and_mpi_is_not_loaded():
    launcher = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    result = _world_in_a_child(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]


def test_under_a_launcher_without_mpi4py_the_error_says_what_to_install(tmp_path):
    (tmp_path / "mpi4py.py").write_text("raise ImportError('hidden')\n")
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    result = _world_in_a_child(dict(os.environ, PMI_SIZE="2", PYTHONPATH=path))
    assert result.returncode != 0
    assert 'pip install "kernelab[mpi]"' in result.stderr
