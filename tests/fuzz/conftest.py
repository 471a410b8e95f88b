"""A tiny trained run for fuzzing the explain server: two epochs on synthetic MNIST."""

import pytest
from mnist_files import write_bar_mnist

from kernelab import cli

TINY = "conv3x4-same,relu,maxpool2,conv3x3x6-p1-s2-symx,relu,avgpool2-p1,flatten,linear10"


@pytest.fixture(scope="session")
def fuzz_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz-mnist")
    write_bar_mnist(data, train=200, test=60, noise=60)
    run = tmp_path_factory.mktemp("fuzz-runs") / "tiny"
    argv = ["train", "--arch", TINY, "--data-dir", str(data), "--run-dir", str(run)]
    argv += ["--epochs", "1", "--no-progress", "--threads", "1"]
    assert cli.main(argv) == 0
    return run
