"""``kernelab inspect RUN --animate``: a GIF frame (and an MP4 frame) per timeline snapshot."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from mnist_files import write_bar_mnist
from PIL import Image

from kernelab import cli
from kernelab.apps import animation, runs
from kernelab.apps.timeline import load_timeline

SPEC = "conv3x4-same,relu,maxpool2,conv3x6-same,relu,flatten,linear10"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Eight steps of a two-convolution network: a timeline of all nine steps."""
    data = tmp_path_factory.mktemp("mnist")
    write_bar_mnist(data, 128, 32, noise=80)
    run = tmp_path_factory.mktemp("run")
    args = ["train", "--data-dir", data, "--run-dir", run, "--no-progress", "--epochs", 1]
    args += ["--arch", SPEC, "--batch-size", 16]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs, "write_pictures", lambda *args: None)
        assert cli.main([str(a) for a in args]) == 0
    return run


def test_tiles_lays_kernels_out_in_rows_with_blank_gaps():
    kernels = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    mosaic = animation.tiles(kernels, columns=2)
    assert mosaic.shape == (3 * 3 - 1, 2 * 4 - 1)
    for index, kernel in enumerate(kernels):
        row, column = divmod(index, 2)
        top, left = row * 3, column * 4
        assert np.array_equal(mosaic[top : top + 2, left : left + 3], kernel)
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 3]).all()
    assert np.isnan(mosaic[6:, 4:]).all()  # the sixth place of the grid is empty


def test_animate_writes_a_gif_frame_per_snapshot_and_an_mp4(capsys, run_dir):
    assert cli.main(["inspect", str(run_dir), "--animate"]) == 0
    gif, mp4 = run_dir / "timeline.gif", run_dir / "timeline.mp4"
    assert f"animate: wrote {gif}, {mp4}" in capsys.readouterr().out
    steps = load_timeline(run_dir).steps
    assert steps == list(range(9))
    with Image.open(gif) as image:
        assert image.n_frames == len(steps)
        frames = []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
    assert not np.array_equal(frames[0], frames[-1])
    assert mp4.stat().st_size > 0
    probe = subprocess.run(
        [animation.find_ffmpeg(), "-i", str(mp4), "-map", "0:v", "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert re.findall(r"frame=\s*(\d+)", probe.stderr)[-1] == str(len(steps))


def test_animate_to_a_path_of_ones_choice(capsys, run_dir, tmp_path):
    gif = tmp_path / "out" / "learning.gif"
    assert cli.main(["inspect", str(run_dir), "--animate", str(gif)]) == 0
    assert gif.exists() and gif.with_suffix(".mp4").exists()
    code = cli.main(["inspect", str(run_dir), "--animate", str(tmp_path / "learning.png")])
    assert code == 1
    assert "its path must end in .gif" in capsys.readouterr().err


def test_animate_without_ffmpeg_writes_the_gif_alone(capsys, run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(animation, "find_ffmpeg", lambda: None)
    assert cli.main(["inspect", str(run_dir), "--animate", str(tmp_path / "a.gif")]) == 0
    assert "(no ffmpeg found: no MP4)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]


def test_a_run_without_a_timeline_is_one_line(capsys, run_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("timeline"))
    assert cli.main(["inspect", str(bare), "--animate"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("kernelab inspect: error: ")
    assert "has no kernel timeline" in err
