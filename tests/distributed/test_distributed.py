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
