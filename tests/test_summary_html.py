"""A model in a notebook: ``Module._repr_html_`` is the summary as an escaped HTML table."""

from html.parser import HTMLParser

import numpy as np

from kernelab import nn
from kernelab.apps import arch
from kernelab.kernels.summary import guess_input_shape, summary


class Table(HTMLParser):
    """The text of every cell, row by row; fails on any tag other than the table's own."""

    TAGS = {"div", "p", "b", "br", "table", "thead", "tbody", "tr", "th", "td", "code"}

    def __init__(self, text: str):
        super().__init__()
        self.rows: list[list[str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        assert tag in self.TAGS, tag
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


class Residual(nn.Module):
    """conv → batch norm → ReLU, added to its input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.relu(self.bn(self.conv(x)))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block = Residual(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.block(self.stem(x)))))


def test_classic_network_table():
    model = arch.build(arch.CLASSIC)
    text = model._repr_html_()
    assert "inputs of shape (1, 28, 28)" in text
    rows = Table(text).rows
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Layer", "Kind", "Kernel", "Output shape"]
    assert "MACs" in header and "Receptive field" in header
    column = {name: [row[i] for row in body] for i, name in enumerate(header)}
    assert column["Kind"] == [
        "conv", "activation", "maxpool", "conv", "activation", "maxpool", "flatten", "linear",
    ]  # fmt: skip
    assert column["Kernel"][0] == "(32, 1, 5, 5)" and column["Kernel"][2] == "(2, 2)"
    assert column["Kernel"][3] == "(64, 32, 5, 5)" and column["Kernel"][-1] == "-"
    assert column["Output shape"][3] == "(64, 14, 14)"
    # numbers are the text summary's, worked out here: 32·1·5·5 + 32 and 28·28·32·25 MACs
    assert column["Params"][0] == f"{32 * 25 + 32:,}"
    assert column["MACs"][0] == f"{28 * 28 * 32 * 25:,}"
    assert column["Receptive field"][:4] == ["5", "5", "6", "14"]
    s = summary(model, (1, 28, 28))
    assert f"Params: {s.params:,}" in text
    assert s._repr_html_() in text  # kl.summary(model, shape) shows the same table


def test_batch_norm_and_residual_block():
    model = SmallResNet()
    assert guess_input_shape(model) == (3, 32, 32)
    rows = Table(model._repr_html_()).rows
    header, body = rows[0], rows[1:]
    kinds = [row[header.index("Kind")] for row in body]
    assert kinds == ["conv", "conv", "batchnorm", "activation", "adaptivepool", "flatten", "linear"]
    names = [row[0].split()[0] for row in body]
    assert names[1:4] == ["block.conv", "block.bn", "block.relu"]
    params = [int(row[header.index("Params")].replace(",", "")) for row in body]
    assert params[2] == 2 * 8  # the batch norm's weight and bias
    assert sum(params) == sum(p.numel() for p in model.parameters())
    assert body[-1][header.index("Output shape")] == "(10,)"


def test_names_are_escaped():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    model.add_module("<script>alert(1)</script>", nn.Linear(2 * 26 * 26, 3))
    evil = type("Net<b>&", (nn.Sequential,), {})
    text = evil(*model.children())._repr_html_()
    assert "<script>" not in text and "Net<b>" not in text
    assert "Net&lt;b&gt;&amp;" in text
    text = model._repr_html_()
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    Table(text)  # only the table's own tags


def test_no_table_when_no_shape_fits():
    assert nn.ReLU()._repr_html_() is None  # nothing to guess a shape from
    # a dense layer after a convolution: 28x28 inputs do not fit this one
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 10 * 10, 3))
    assert model._repr_html_() is None
    assert np.isfinite(summary(model, (1, 12, 12)).macs)  # the right shape still works
