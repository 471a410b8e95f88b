"""kernelab.kernels.viz: every picture is a matplotlib Figure that saves as a PNG Pillow
can open."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from kernelab.kernels import designed as K
from kernelab.kernels import viz

RNG = np.random.default_rng(0)


def saved(figure, path):
    assert isinstance(figure, Figure)
    viz.save(figure, path)
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 50
        return image.size


PICTURES = {
    "kernels": lambda: viz.plot_kernels(RNG.normal(size=(6, 2, 3, 3))),
    "kernels one": lambda: viz.plot_kernels(RNG.normal(size=(1, 1, 5, 5))),
    "depth": lambda: viz.plot_kernel_depth(RNG.normal(size=(4, 3, 5, 5))),
    "feature maps signed": lambda: viz.plot_feature_maps(RNG.normal(size=(5, 8, 8))),
    "feature maps relu": lambda: viz.plot_feature_maps(np.abs(RNG.normal(size=(1, 8, 8)))),
    "frequency": lambda: viz.plot_frequency_responses(
        np.stack([K.gaussian(3), K.laplacian(), K.sobel_x(), K.identity(3)])[:, None]
    ),
    "images": lambda: viz.plot_images(
        [
            ("grey", RNG.integers(0, 256, (9, 9), dtype=np.uint8)),
            ("colour", RNG.integers(0, 256, (9, 9, 3), dtype=np.uint8)),
        ],
        "two",
    ),
    "probabilities": lambda: viz.plot_probabilities(np.full(10, 0.1), list("0123456789")),
    "curves": lambda: viz.plot_learning_curves(
        [
            {"epoch": e, "train_loss": 1 / e, "train_acc": 0.5, "val_loss": 1.2 / e, "val_acc": 0.4}
            for e in (1, 2, 3)
        ]
    ),
    "confusion": lambda: viz.plot_confusion(RNG.integers(0, 9, (3, 3)), ["a", "b", "c"]),
}


@pytest.mark.parametrize("name", list(PICTURES))
def test_picture_saves_a_png(tmp_path, name):
    saved(PICTURES[name](), tmp_path / "sub" / f"{name}.png")


def test_big_layers_are_capped_with_a_note(tmp_path):
    figure = viz.plot_kernel_depth(RNG.normal(size=(20, 18, 3, 3)), max_out=4, max_in=3)
    tiles = figure.axes[0].images[0].get_array()
    assert tiles.shape == (4 * 4 - 1, 3 * 4 - 1)  # 3x3 slices, 1 blank pixel between
    title = figure.axes[0].get_title()
    assert "first 4 of 20 output channels" in title and "first 3 of 18 input channels" in title
    saved(figure, tmp_path / "depth.png")
    figure = viz.plot_feature_maps(RNG.normal(size=(40, 6, 6)), max_maps=10)
    assert "first 10 of 40 maps" in figure.axes[0].get_title()
    saved(figure, tmp_path / "maps.png")


def test_frequency_tiles_are_titled_with_their_class(tmp_path):
    figure = viz.plot_frequency_responses(np.stack([K.box(3), K.laplacian()])[:, None])
    assert [text.get_text() for text in figure.axes[0].texts] == ["0 low-pass", "1 high-pass"]
    saved(figure, tmp_path / "frequency.png")


def test_figures_are_kept_by_nobody_but_the_caller():
    """No pyplot registry holds them: many figures, none left once the caller drops them."""
    import gc
    import weakref

    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    refs = [weakref.ref(PICTURES[name]()) for name in PICTURES for _ in range(3)]
    assert plt.get_fignums() == before
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_a_figure_has_a_png_form_for_notebooks():
    png = viz.plot_kernels(RNG.normal(size=(4, 1, 3, 3)))._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_kernelab_viz_is_this_module():
    import kernelab as kl

    assert kl.viz is viz


def test_a_notebook_shows_each_figure_once(tmp_path):
    """In a kernel: a returned figure shows once, figures not returned do not show at all,
    with and without pyplot imported (the inline backend then shows what pyplot made)."""
    from notebook_kernel import execute, from_cells, outputs_of

    make = "viz.plot_kernels(np.ones((4, 1, 3, 3)))"
    notebook = execute(
        from_cells(
            "import numpy as np\nimport kernelab as kl\nviz = kl.viz",
            make,
            f"figures = [{make} for _ in range(20)]\nfigure = {make}",
            "figure",
            f"import matplotlib.pyplot as plt\n{make}",
            "plt.plot([0, 1])\nfigure",
            "len(plt.get_fignums())",
        ),
        tmp_path,
    )
    cells = notebook.cells
    assert [len(outputs_of(c, "image/png")) for c in cells] == [0, 1, 0, 1, 1, 2, 0]
    assert outputs_of(cells[-1], "text/plain") == ["0"]  # the inline backend closed its own
