"""The benchmark cases: every workload the issue lists, each for kernelab and PyTorch.

Each function returns a :class:`Case` whose ``build`` makes identical weights (kernelab's,
copied into PyTorch) and identical inputs for both engines. Sizes are parameters so the smoke
test can run any case tiny; :func:`all_cases` holds the sizes the report uses.
"""

from __future__ import annotations

import numpy as np
import torch

import kernelab as kl
from kernelab import nn

from . import models, nets
from .harness import Case, Target, Workload, relative_difference

SEED = 0
CONV_TARGET = Target("time", 1.2)  # every single-layer conv: at most 1.2x PyTorch's time
DEPTHWISE_TARGET = Target("time", 1.5)
LAYER_TARGET = Target("time", 1.0)  # pooling, ReLU and batch norm: no slower than PyTorch
NET_TARGET = Target("speed", 0.8)  # the tutorial CNN and ResNet training: ≥ 0.8x images/s


def _inputs(shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# ---- the classic network


def classic_train(batch: int, size: int = 28, target: Target | None = None, sweep: str = ""):
    """One SGD-momentum training step of the classic network, cross-entropy included."""

    def build() -> Workload:
        batches = models.make_batches(4, batch, size, SEED)
        kl_model, pt_model = models.classic_kernelab(size, SEED), models.classic_torch(size)
        models.copy_weights(kl_model, pt_model)
        check = _logits_check(kl_model, pt_model, batches[0][0])
        return Workload(
            models.kernelab_train_step(kl_model, batches),
            models.torch_train_step(pt_model, batches),
            check,
        )

    return Case(
        _classic_name("train", batch, size, sweep),
        f"training step, batch {batch}, {size}x{size}",
        build,
        images=batch,
        flops=batch * models.classic_flops(size, training=True),
        target=target,
        meta={"mode": "train", "batch": batch, "size": size, "sweep": sweep},
    )


def classic_infer(batch: int, size: int = 28, target: Target | None = None, sweep: str = ""):
    """Forward pass of the classic network without a graph (inference mode, eval())."""

    def build() -> Workload:
        batches = models.make_batches(4, batch, size, SEED)
        kl_model, pt_model = models.classic_kernelab(size, SEED), models.classic_torch(size)
        models.copy_weights(kl_model, pt_model)
        return Workload(
            models.kernelab_infer_step(kl_model, batches),
            models.torch_infer_step(pt_model, batches),
            _logits_check(kl_model, pt_model, batches[0][0]),
        )

    return Case(
        _classic_name("infer", batch, size, sweep),
        f"inference, batch {batch}, {size}x{size}",
        build,
        images=batch,
        flops=batch * models.classic_flops(size, training=False),
        target=target,
        meta={"mode": "infer", "batch": batch, "size": size, "sweep": sweep},
    )


def _classic_name(mode: str, batch: int, size: int, sweep: str) -> str:
    """classic/train_b64; scaling/infer_b8 (batch sweep); scaling/train_b16_56px (size sweep)."""
    if not sweep:
        return f"classic/{mode}_b{batch}"
    return f"scaling/{mode}_b{batch}" + (f"_{size}px" if sweep == "size" else "")


def _logits_check(kl_model, pt_model, images: np.ndarray):
    def check() -> float:
        with kl.no_grad():
            ours = kl_model(kl.from_numpy(images)).array
        with torch.no_grad():
            theirs = pt_model(torch.from_numpy(images)).numpy()
        return relative_difference(ours, theirs)

    return check


# ---- the tutorial CNN, a CIFAR ResNet, a small MobileNet and a CNN with a wide dense layer


NETS = {
    # name: (builder of nets.py, image shape, title)
    "tutorial": (nets.tutorial, (1, 28, 28), "tutorial CNN (conv5-BN-ReLU-pool x2, Adam)"),
    "resnet8": (nets.resnet8, (3, 32, 32), "ResNet-8 (CIFAR, residual, SGD momentum)"),
    "mobile": (nets.mobile, (3, 32, 32), "MobileNet-like (depthwise-separable, SGD momentum)"),
    "dense_head": (
        nets.dense_head,
        (3, 32, 32),
        "CNN with a wide dense layer (CIFAR, Linear 4096→512, SGD momentum)",
    ),
}


def _build_net(net: str, engine_nn, size: int):
    """The network for ``size``-pixel inputs (the dense layers of the tutorial CNN and of the
    CNN with a wide dense layer depend on it; the others end in global average pooling)."""
    builder = NETS[net][0]
    return builder(engine_nn, size) if net in ("tutorial", "dense_head") else builder(engine_nn)


def _net_pair(net: str, size: int):
    """kernelab's network (from seed SEED) and PyTorch's, with kernelab's weights."""
    kl.manual_seed(SEED)
    kl_model, pt_model = _build_net(net, nn, size), _build_net(net, torch.nn, size)
    models.copy_weights(kl_model, pt_model)
    return kl_model, pt_model


def net_case(
    net: str, mode: str, batch: int, size: int | None = None, target: Target | None = None
) -> Case:
    """A training step (``mode`` "train"; Adam lr 1e-3 for the tutorial CNN as in the tutorial,
    SGD momentum for the others) or an inference pass ("infer") of one of :data:`NETS`."""
    _, image, title = NETS[net]
    size = size or image[-1]
    shape = (image[0], size, size)
    adam_lr = nets.TUTORIAL_LR if net == "tutorial" else 0.0

    def build() -> Workload:
        batches = models.make_batches(4, batch, size, SEED, channels=image[0])
        kl_model, pt_model = _net_pair(net, size)
        if mode == "train":
            steps = (
                models.kernelab_train_step(kl_model, batches, adam_lr),
                models.torch_train_step(pt_model, batches, adam_lr),
            )
        else:
            steps = (
                models.kernelab_infer_step(kl_model, batches),
                models.torch_infer_step(pt_model, batches),
            )
        return Workload(*steps, _logits_check(kl_model, pt_model, batches[0][0]))

    kind = "training step" if mode == "train" else "inference"
    return Case(
        f"nets/{net}_{mode}_b{batch}",
        f"{title}: {kind}, batch {batch}, {'x'.join(map(str, shape))}",
        build,
        images=batch,
        flops=batch * nets.product_flops(_build_net(net, torch.nn, size), shape, mode == "train"),
        target=target,
        meta={"net": net, "mode": mode, "batch": batch, "size": size},
    )


# ---- one layer, forward and backward


def _layer_workload(kl_layer, pt_layer, x: np.ndarray, loss: bool = False) -> Workload:
    """Forward and backward of one layer with a fixed upstream gradient; x wants a gradient
    too, as it would in the middle of a network. Gradients are reset each call."""
    kx = kl.tensor(x, requires_grad=True)
    px = torch.from_numpy(x.copy()).requires_grad_()
    with kl.no_grad():
        out_shape = kl_layer(kx).shape
    gy = _inputs(out_shape, SEED + 1)
    pgy = torch.from_numpy(gy)
    kl_params, pt_params = list(kl_layer.parameters()), list(pt_layer.parameters())

    def kernelab_step() -> None:
        kx.grad = None
        for p in kl_params:
            p.grad = None
        kl_layer(kx).backward(gy)

    def torch_step() -> None:
        px.grad = None
        for p in pt_params:
            p.grad = None
        pt_layer(px).backward(pgy)

    def check() -> float:
        with kl.no_grad():
            ours = kl_layer(kx).array
        with torch.no_grad():
            theirs = pt_layer(px).numpy()
        return relative_difference(ours, theirs)

    return Workload(kernelab_step, torch_step, check)


def conv_flops(n, c_in, c_out, out_hw, kernel, groups, input_grad=True) -> float:
    """2·N·C_out·OH·OW·(C_in/groups)·kH·kW forward; the backward adds one product for the
    kernel gradient and one for the input gradient."""
    forward = 2 * n * c_out * out_hw[0] * out_hw[1] * (c_in // groups) * kernel * kernel
    return float(forward * (3 if input_grad else 2))


def conv_layer(
    name: str,
    kernel: int,
    stride: int = 1,
    padding="same",
    dilation: int = 1,
    groups: int = 1,
    n: int = 64,
    c_in: int = 32,
    c_out: int = 64,
    size: int = 28,
    target: Target | None = CONV_TARGET,
) -> Case:
    """``Conv2d`` forward + backward (input, kernel and bias gradients)."""
    settings = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)

    def build() -> Workload:
        kl_layer = nn.Conv2d(c_in, c_out, kernel, generator=SEED, **settings)
        pt_layer = torch.nn.Conv2d(c_in, c_out, kernel, **settings)
        models.copy_weights(kl_layer, pt_layer)
        return _layer_workload(kl_layer, pt_layer, _inputs((n, c_in, size, size)))

    window = dilation * (kernel - 1) + 1
    pad_total = window - 1 if padding == "same" else 2 * padding
    out = (size + pad_total - window) // stride + 1
    described = [f"{kernel}x{kernel}"] + [
        f"{key} {value}" for key, value in settings.items() if value not in (1, "same")
    ]
    return Case(
        f"conv/{name}",
        f"Conv2d {c_in}→{c_out}, " + ", ".join(described),
        build,
        images=n,
        flops=conv_flops(n, c_in, c_out, (out, out), kernel, groups),
        target=target,
        meta={"kernel": kernel, **settings, "n": n, "c_in": c_in, "c_out": c_out, "size": size},
    )


def pool_layer(name: str, kind: str, kernel: int, stride=None, padding=0, shape=(64, 32, 28, 28)):
    """``MaxPool2d`` or ``AvgPool2d`` forward + backward."""

    def build() -> Workload:
        if kind == "max":
            layers = (
                nn.MaxPool2d(kernel, stride, padding),
                torch.nn.MaxPool2d(kernel, stride, padding),
            )
        else:
            layers = (
                nn.AvgPool2d(kernel, stride, padding),
                torch.nn.AvgPool2d(kernel, stride, padding),
            )
        return _layer_workload(*layers, _inputs(shape))

    extra = (f", stride {stride}" if stride else "") + (f", padding {padding}" if padding else "")
    return Case(
        f"ops/{name}",
        f"{kind.capitalize()}Pool2d {kernel}x{kernel}{extra} on {'x'.join(map(str, shape))}",
        build,
        images=shape[0],
        target=LAYER_TARGET,
    )


def global_avgpool_layer(shape=(64, 64, 16, 16)) -> Case:
    """Global average pooling (``AdaptiveAvgPool2d(1)``), as at the end of a ResNet."""
    return Case(
        "ops/global_avgpool",
        f"AdaptiveAvgPool2d(1) on {'x'.join(map(str, shape))}",
        lambda: _layer_workload(
            nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), _inputs(shape)
        ),
        images=shape[0],
        target=LAYER_TARGET,
    )


def batchnorm_layer(shape=(64, 32, 28, 28)) -> Case:
    """``BatchNorm2d`` in training mode (batch statistics, running averages updated)."""

    def build() -> Workload:
        kl_layer, pt_layer = nn.BatchNorm2d(shape[1]), torch.nn.BatchNorm2d(shape[1])
        models.copy_weights(kl_layer, pt_layer)
        return _layer_workload(kl_layer, pt_layer, _inputs(shape))

    return Case(
        "ops/batchnorm2d",
        f"BatchNorm2d (training) on {'x'.join(map(str, shape))}",
        build,
        images=shape[0],
        target=LAYER_TARGET,
    )


def relu_layer(shape=(64, 32, 28, 28)) -> Case:
    return Case(
        "ops/relu",
        f"ReLU on {'x'.join(map(str, shape))}",
        lambda: _layer_workload(nn.ReLU(), torch.nn.ReLU(), _inputs(shape)),
        images=shape[0],
        target=LAYER_TARGET,
    )


def linear_layer(name: str, n: int, features_in: int, features_out: int) -> Case:
    def build() -> Workload:
        kl_layer = nn.Linear(features_in, features_out, generator=SEED)
        pt_layer = torch.nn.Linear(features_in, features_out)
        models.copy_weights(kl_layer, pt_layer)
        return _layer_workload(kl_layer, pt_layer, _inputs((n, features_in)))

    return Case(
        f"ops/{name}",
        f"Linear {features_in}→{features_out}, batch {n}",
        build,
        images=n,
        flops=6.0 * n * features_in * features_out,
    )


def cross_entropy(name: str, n: int, classes: int) -> Case:
    """Cross-entropy of logits against class indices, forward and backward to the logits."""

    def build() -> Workload:
        logits = _inputs((n, classes))
        labels = np.random.default_rng(SEED).integers(0, classes, n).astype(np.int64)
        kx, px = kl.tensor(logits, requires_grad=True), torch.from_numpy(logits).requires_grad_()
        ky, py = kl.from_numpy(labels), torch.from_numpy(labels)

        def kernelab_step() -> None:
            kx.grad = None
            nn.functional.cross_entropy(kx, ky).backward()

        def torch_step() -> None:
            px.grad = None
            torch.nn.functional.cross_entropy(px, py).backward()

        def check() -> float:
            ours = nn.functional.cross_entropy(kx, ky).item()
            return relative_difference(ours, torch.nn.functional.cross_entropy(px, py).item())

        return Workload(kernelab_step, torch_step, check)

    return Case(f"ops/{name}", f"cross-entropy, {n}x{classes} logits", build, images=n)


# ---- the machine's ceiling


def matmul_ceiling(name: str = "ceiling/matmul1024", size: int = 1024) -> Case:
    """float32 ``a @ b`` of two size x size matrices: NumPy's BLAS (the ceiling kernelab can
    reach, since all its heavy work is NumPy matrix products) beside ``torch.mm``."""

    def build() -> Workload:
        a, b = _inputs((size, size)), _inputs((size, size), SEED + 1)
        c = np.empty_like(a)
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.empty(size, size)
        return Workload(
            lambda: np.matmul(a, b, out=c),
            lambda: torch.mm(ta, tb, out=tc),
            lambda: relative_difference(a @ b, torch.mm(ta, tb).numpy()),
        )

    return Case(name, f"float32 matmul {size}x{size}", build, flops=2.0 * size**3)


# ---- the standard list


SCALING_BATCHES = (1, 8, 64, 256)
SCALING_SIZES = (28, 56, 112)
SCALING_SIZE_BATCH = 16


def all_cases() -> list[Case]:
    """Every case of a full report, in the order they run."""
    cases = [
        matmul_ceiling(),
        classic_train(64, target=Target("speed", 1.0)),
        classic_train(256, target=Target("speed", 1.0)),
        classic_infer(256, target=Target("speed", 1.2)),
        net_case("tutorial", "train", 100, target=NET_TARGET),
        net_case("resnet8", "train", 64, target=NET_TARGET),
        net_case("resnet8", "infer", 64),
        net_case("mobile", "train", 64),
        net_case("dense_head", "train", 64),
    ]
    cases += [conv_layer(f"k{k}", k) for k in (1, 2, 3, 4, 5, 7)]
    cases += [
        conv_layer("k3_stride2", 3, stride=2, padding=1),
        conv_layer("k1_stride2", 1, stride=2, padding=0),  # ResNet's projection shortcut
        conv_layer("k3_dilation2", 3, dilation=2),
        conv_layer("depthwise_k3", 3, groups=32, c_out=32, target=DEPTHWISE_TARGET),
        conv_layer("depthwise_k5", 5, groups=32, c_out=32, target=DEPTHWISE_TARGET),
    ]
    cases += [
        pool_layer("maxpool2", "max", 2),
        pool_layer("maxpool3_stride2", "max", 3, stride=2, padding=1),
        pool_layer("avgpool2", "avg", 2),
        global_avgpool_layer(),
        relu_layer(),
        batchnorm_layer(),
        linear_layer("linear_3136x10", 64, 3136, 10),
        linear_layer("linear_1024x1024", 256, 1024, 1024),
        cross_entropy("cross_entropy_64x10", 64, 10),
        cross_entropy("cross_entropy_256x1000", 256, 1000),
    ]
    # How cost grows; the batch sweep reuses classic/train_b64, train_b256 and infer_b256.
    for batch in SCALING_BATCHES[:2]:
        cases += [classic_infer(batch, sweep="batch"), classic_train(batch, sweep="batch")]
    cases.append(classic_infer(64, sweep="batch"))
    for size in SCALING_SIZES:
        cases += [
            classic_infer(SCALING_SIZE_BATCH, size, sweep="size"),
            classic_train(SCALING_SIZE_BATCH, size, sweep="size"),
        ]
    cases.append(matmul_ceiling("ceiling/matmul1024_end"))
    return cases
