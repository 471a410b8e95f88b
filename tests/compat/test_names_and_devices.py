"""The names a PyTorch script imports, the device lines it runs, and what fails at once:
a missing name, a GPU, an argument kernelab does not support."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import kernelab as kl

# ---- what is there, under PyTorch's names


def test_imports_read_as_pytorch_s():
    import kernelab.nn.init as init

    import kernelab.nn as nn
    import kernelab.nn.functional as F
    import kernelab.optim as optim
    import kernelab.utils.data as data
    from kernelab.optim.lr_scheduler import ReduceLROnPlateau, StepLR
    from kernelab.utils.data import DataLoader, Subset, TensorDataset, default_collate, random_split

    assert init is kl.init and nn.init is kl.init and kl.nn.functional is F
    assert data.DataLoader is DataLoader is kl.data.DataLoader
    assert data.Subset is Subset and data.TensorDataset is TensorDataset
    assert data.default_collate is default_collate and data.random_split is random_split
    assert optim.lr_scheduler.StepLR is StepLR and ReduceLROnPlateau
    for name in ("Adadelta", "Adagrad", "Adam", "AdamW", "NAdam", "RMSprop", "SGD"):
        assert isinstance(getattr(optim, name), type)
    for name in (
        "StepLR",
        "MultiStepLR",
        "ExponentialLR",
        "CosineAnnealingLR",
        "OneCycleLR",
        "LambdaLR",
        "ReduceLROnPlateau",
    ):
        assert isinstance(getattr(optim.lr_scheduler, name), type)
    for name in (
        "ModuleList",
        "Sequential",
        "Identity",
        "Dropout",
        "Dropout2d",
        "BatchNorm2d",
        "Conv2d",
        "Linear",
        "Flatten",
        "CrossEntropyLoss",
        "NLLLoss",
        "MaxPool2d",
    ):
        assert isinstance(getattr(nn, name), type)
    for name in ("nll_loss", "log_softmax", "cross_entropy", "dropout", "relu", "max_pool2d"):
        assert callable(getattr(F, name))
    assert callable(init.kaiming_normal_) and callable(nn.utils.clip_grad_norm_)


def test_module_methods_a_training_script_calls():
    model = kl.nn.Sequential(kl.nn.Linear(3, 4), kl.nn.ReLU(), kl.nn.Linear(4, 2))
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "2"]
    assert len(list(model.children())) == 3
    model(kl.ones(1, 3)).sum().backward()
    model.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())
    assert model.requires_grad_(False) is model and not any(
        p.requires_grad for p in model.parameters()
    )
    assert sum(p.numel() for p in model.parameters()) == 3 * 4 + 4 + 4 * 2 + 2


def test_a_submodule_is_imported_on_first_use():
    assert kl.data is importlib.import_module("kernelab.data")
    assert hasattr(kl, "apps")


# ---- what is not there fails where it is used, naming it


@pytest.mark.parametrize(
    ("module", "name", "torch_name"),
    [
        ("kernelab", "fft", "torch.fft"),
        ("kernelab", "compile", "torch.compile"),
        ("kernelab", "bfloat16", "torch.bfloat16"),
        ("kernelab.nn", "Transformer", "torch.nn.Transformer"),
        ("kernelab.nn", "Conv1d", "torch.nn.Conv1d"),
        ("kernelab.nn.functional", "interpolate", "torch.nn.functional.interpolate"),
        ("kernelab.optim", "LBFGS", "torch.optim.LBFGS"),
        ("kernelab.optim.lr_scheduler", "CyclicLR", "torch.optim.lr_scheduler.CyclicLR"),
        ("kernelab.utils.data", "WeightedRandomSampler", "torch.utils.data.WeightedRandomSampler"),
        ("kernelab.utils", "checkpoint", "torch.utils.checkpoint"),
        ("kernelab.cuda", "amp", "torch.cuda.amp"),
    ],
)
def test_a_missing_name_says_it_is_not_part_of_kernelab(module, name, torch_name):
    with pytest.raises(AttributeError, match=f"{torch_name} is not part of kernelab"):
        getattr(importlib.import_module(module), name)
    assert not hasattr(importlib.import_module(module), name)


def test_private_names_keep_python_s_plain_error():
    for module in (kl, kl.nn, kl.nn.functional, kl.optim, kl.utils.data):
        assert not hasattr(module, "__wrapped__")
        with pytest.raises(AttributeError) as error:
            module.__wrapped__  # noqa: B018
        assert "not part of kernelab" not in str(error.value)
    assert not hasattr(kl.ones(1), "__wrapped__")


@pytest.mark.parametrize("name", ["bernoulli_", "index_add_", "stft", "cumsum", "to_sparse"])
def test_a_missing_tensor_method_is_named(name):
    with pytest.raises(AttributeError, match=rf"kernelab does not provide torch\.Tensor\.{name}"):
        getattr(kl.ones(2), name)
    with pytest.raises(AttributeError, match=rf"torch\.Tensor\.{name}"):
        getattr(kl.nn.Parameter(kl.ones(2)), name)


def test_from_import_of_a_missing_name_is_an_import_error():
    with pytest.raises(ImportError, match="Transformer"):
        from kernelab.nn import Transformer  # noqa: F401


# ---- devices


def test_the_usual_device_lines_pick_the_cpu():
    import kernelab as torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if torch.backends.mps.is_available():
        device = torch.device("mps")
    if torch.accelerator.is_available():
        device = torch.accelerator.current_accelerator()
    torch.cuda.manual_seed_all(0)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    assert device == torch.device("cpu") == "cpu" and str(device) == "cpu"
    assert torch.cuda.device_count() == 0 and torch.accelerator.current_accelerator() is None
    model = torch.nn.Linear(2, 2).to(device)
    x = torch.ones(1, 2).to(device, non_blocking=True)
    assert x.device == device and x.device.type == "cpu" and not x.is_cuda
    assert model(x).shape == (1, 2) and model.to(device=device, non_blocking=True) is model


def test_device_objects():
    assert kl.device("cuda:1") == kl.device("cuda", 1) and kl.device("cuda:1").index == 1
    assert repr(kl.device("cpu")) == "device(type='cpu')"
    assert kl.device(kl.device("cpu")) == "cpu" and kl.device("cpu") != "cuda"
    with pytest.raises(RuntimeError, match="device type"):
        kl.device("gpu")


CUDA_REQUESTS = {
    "tensor.to": lambda: kl.ones(2).to("cuda"),
    "tensor.to(device)": lambda: kl.ones(2).to(kl.device("cuda", 0)),
    "tensor.cuda": lambda: kl.ones(2).cuda(),
    "module.to": lambda: kl.nn.Linear(2, 2).to("cuda"),
    "module.cuda": lambda: kl.nn.Linear(2, 2).cuda(),
    "zeros(device=)": lambda: kl.zeros(2, device="cuda"),
    "randn(device=)": lambda: kl.randn(2, device="cuda:0"),
    "tensor(device=)": lambda: kl.tensor([1.0], device="cuda"),
    "Linear(device=)": lambda: kl.nn.Linear(2, 2, device="cuda"),
    "Conv2d(device=)": lambda: kl.nn.Conv2d(1, 1, 3, device="cuda"),
    "BatchNorm2d(device=)": lambda: kl.nn.BatchNorm2d(4, device="cuda"),
    "Generator(device=)": lambda: kl.Generator(device="cuda"),
    "load(map_location=)": lambda: kl.load("unused.pt", map_location="cuda"),
    "mps": lambda: kl.ones(2).to("mps"),
}


@pytest.mark.parametrize("request_", CUDA_REQUESTS.values(), ids=list(CUDA_REQUESTS))
def test_asking_for_a_gpu_is_one_clear_error(request_):
    with pytest.raises(RuntimeError, match="kernelab computes on the CPU only"):
        request_()


# ---- arguments kernelab does not support


UNSUPPORTED = {
    "padding_mode": (lambda: kl.nn.Conv2d(1, 1, 3, padding_mode="circular"), "padding_mode"),
    "return_indices": (lambda: kl.nn.MaxPool2d(2, return_indices=True), "return_indices"),
    "batch_sampler": (
        lambda: kl.utils.data.DataLoader([1, 2], batch_sampler=[[0, 1]]),
        "batch_sampler",
    ),
    "rounding_mode": (lambda: kl.ones(2).div(2, rounding_mode="floor"), "rounding_mode"),
}


@pytest.mark.parametrize("case", UNSUPPORTED.values(), ids=list(UNSUPPORTED))
def test_an_unsupported_argument_is_named(case):
    call, name = case
    with pytest.raises(NotImplementedError, match=name):
        call()


def test_arguments_that_change_nothing_on_a_cpu_are_accepted():
    kl.nn.ReLU(inplace=True)
    kl.nn.functional.relu(kl.ones(2), inplace=True)
    kl.nn.Dropout(0.5, inplace=True)
    loader = kl.utils.data.DataLoader(
        kl.utils.data.TensorDataset(np.arange(4.0)),
        batch_size=2,
        num_workers=2,
        pin_memory=True,
        persistent_workers=True,
        prefetch_factor=2,
        worker_init_fn=print,
    )
    assert len(list(loader)) == 2
