"""kernelab.summary: the classic network's numbers worked out by hand, shapes and parameter
counts against PyTorch, receptive fields against the support of an input gradient."""

import numpy as np
import pytest
import torch
from comparisons import torch_classic

import kernelab as kl
from kernelab import nn
from kernelab.apps import arch
from kernelab.core.errors import ShapeError
from kernelab.kernels.summary import summary

torch.set_num_threads(1)


def test_classic_network_by_hand():
    s = summary(arch.build(arch.CLASSIC), (1, 28, 28))
    rows = {r.name: r for r in s.rows}
    assert [r.layer for r in s.rows] == [
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "Flatten",
        "Linear",
    ]
    # output shapes: "same" keeps 28x28, each 2x2 pool halves it
    assert [r.output_shape for r in s.rows] == [
        (32, 28, 28),
        (32, 28, 28),
        (32, 14, 14),
        (64, 14, 14),
        (64, 14, 14),
        (64, 7, 7),
        (64 * 7 * 7,),
        (10,),
    ]
    # parameters: kernels C_out·C_in·kH·kW plus one bias per feature map
    assert rows["0"].params == 32 * 1 * 25 + 32 == 832
    assert rows["3"].params == 64 * 32 * 25 + 64 == 51264
    assert rows["7"].params == 3136 * 10 + 10 == 31370
    assert [rows[n].params for n in "12456"] == [0] * 5
    assert s.params == 832 + 51264 + 31370 == 83466
    assert s.trainable == 83466 and s.frozen == 0 and s.full_params == 83466
    # MACs per image: output pixels · C_out · C_in · kH · kW; dense: in · out
    assert rows["0"].macs == 28 * 28 * 32 * 1 * 25 == 627200
    assert rows["3"].macs == 14 * 14 * 64 * 32 * 25 == 10035200
    assert rows["7"].macs == 3136 * 10 == 31360
    assert s.macs == 627200 + 10035200 + 31360 == 10693760
    # receptive field r_out = r_in + (k − 1)·j_in, jump j_out = j_in·s,
    # start_out = start_in + ((k − 1)/2 − p_before)·j_in
    fields = [(r.receptive_field, r.jump, r.start) for r in s.rows[:6]]
    assert fields == [
        ((5, 5), (1, 1), (0, 0)),  # conv1: 1 + 4·1 = 5; start 0 + (2 − 2)·1 = 0
        ((5, 5), (1, 1), (0, 0)),  # relu changes nothing
        ((6, 6), (2, 2), (0.5, 0.5)),  # pool1: 5 + 1·1 = 6; 0 + (0.5 − 0)·1 = 0.5
        ((14, 14), (2, 2), (0.5, 0.5)),  # conv2: 6 + 4·2 = 14; 0.5 + (2 − 2)·2 = 0.5
        ((14, 14), (2, 2), (0.5, 0.5)),
        ((16, 16), (4, 4), (1.5, 1.5)),  # pool2: 14 + 1·2 = 16; 0.5 + 0.5·2 = 1.5
    ]
    assert all(r.receptive_field is None for r in s.rows[6:])  # flattened: not spatial
    assert s.input_shape == (1, 28, 28) and s.output_shape == (10,)
    text = str(s)
    for expected in ("832", "51,264", "31,370", "83,466", "627,200", "10,693,760", "(64, 7, 7)"):
        assert expected in text


def test_shapes_and_parameters_match_pytorch():
    spec = "conv5x3x8-same,bn,relu,maxpool2,conv3x3x16-s2-d2-p2-g2,relu,gap,flatten,linear10"
    model = arch.build(spec, (3, 20, 18))
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, (5, 3), padding="same"),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=2),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 10),
    )
    s = summary(model, (3, 20, 18))
    x = torch.zeros(1, 3, 20, 18)
    for row, layer in zip(s.rows, reference, strict=True):
        x = layer(x)
        assert row.output_shape == tuple(x.shape[1:]), row.name
        assert row.params == sum(p.numel() for p in layer.parameters()), row.name
    assert s.params == sum(p.numel() for p in reference.parameters())
    assert s.rows[4].macs == 5 * 5 * 16 * (8 // 2) * 3 * 3  # grouped: C_in/groups per output


def test_classic_parameter_count_matches_pytorch():
    reference = torch_classic()
    s = summary(arch.build(arch.CLASSIC), (1, 28, 28))
    assert s.params == sum(p.numel() for p in reference.parameters()) == 83466


def test_receptive_field_is_the_support_of_an_input_gradient():
    """All-ones kernels and average pooling: output (i, j) depends on exactly the input pixels
    of its receptive field, centred on start + (i, j)·jump."""
    model = nn.Sequential(
        nn.Conv2d(1, 1, (4, 3), padding="same", bias=False),  # even kernel: 1 above, 2 below
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Conv2d(1, 1, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 3), bias=False),
        nn.AvgPool2d((1, 2), stride=1),
    )
    for conv in (model[0], model[2]):
        conv.weight.array[...] = 1
    size = (41, 47)
    s = summary(model, (1,) + size)
    last = s.rows[-1]
    for out_pixel in [(4, 3), (7, 5)]:
        x = kl.tensor(np.ones((1, 1) + size, np.float32), requires_grad=True)
        y = model(x)
        probe = np.zeros(y.shape, np.float32)
        probe[(0, 0) + out_pixel] = 1
        y.backward(probe)
        rows, cols = np.nonzero(x.grad[0, 0])
        for axis, hits in ((0, rows), (1, cols)):
            centre = last.start[axis] + out_pixel[axis] * last.jump[axis]
            half = (last.receptive_field[axis] - 1) / 2
            assert (hits.min(), hits.max()) == (centre - half, centre + half), (axis, out_pixel)
    assert last.receptive_field[0] != last.receptive_field[1]
    assert "x" in str(s).splitlines()[-5]  # non-square fields print as h x w


def test_symmetric_and_frozen_layers():
    model = arch.build(arch.CLASSIC.replace("-same", "-same-symxy"))
    model[7].requires_grad_(False)
    s = summary(model, (1, 28, 28))
    conv1, conv2 = s.rows[0], s.rows[3]
    assert (conv1.params, conv1.full_params) == (32 * 1 * 9 + 32, 832)  # 5x5 xy: 9 free
    assert (conv2.params, conv2.full_params) == (64 * 32 * 9 + 64, 51264)
    assert conv1.macs == 627200  # the full kernel is what the convolution multiplies
    assert s.params == 320 + 18496 + 31370
    assert s.full_params == 83466
    assert (s.frozen, s.trainable) == (31370, 320 + 18496)
    assert (s.rows[7].frozen, s.rows[7].trainable) == (31370, 0)
    text = str(s)
    assert "Full kernels" in text and "Frozen" in text and "symmetry saves 33,280" in text


def test_shared_layer_counts_its_parameters_once_and_its_work_twice():
    conv = nn.Conv2d(2, 2, 3, padding=1)
    s = summary(nn.Sequential(conv, nn.ReLU(), conv), (2, 6, 6))
    assert [r.name for r in s.rows] == ["0", "1", "0"]
    assert s.params == 2 * 2 * 9 + 2
    assert s.macs == 2 * (6 * 6 * 2 * 2 * 9)
    assert s.rows[2].receptive_field == (5, 5)


def test_model_is_left_as_it_was():
    model = arch.build("conv3x4,dropout0.5,bn,flatten,linear2", (1, 5, 5))
    model[2].eval()
    summary(model, (1, 5, 5))
    assert [m.training for m in model] == [True, True, False, True, True]
    assert all("forward" not in m.__dict__ for m in model.modules())
    with pytest.raises(ShapeError):
        summary(model, (3, 5, 5))
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_float64_model():
    model = arch.build("conv3x4,flatten,linear2", (1, 5, 5)).double()
    assert summary(model, (1, 5, 5)).output_shape == (2,)
