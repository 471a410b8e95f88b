"""Porting a PyTorch script (apps/porting.py): the imports rewritten and nothing else, on the
PyTorch MNIST example, a torchvision CIFAR script and the compatibility programs; the ported
script run on kernelab against the original on PyTorch; the names kernelab lacks, with their
lines and without false alarms; unreadable scripts; and ``write_ported`` never losing the
original."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kernelab import cli
from kernelab.apps import porting
from kernelab.apps.porting import PortError, port_source

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"

CIFAR = '''\
"""Train a CNN on CIFAR-10 (import torch, torchvision: only text here)."""
import os, sys
import torch, torchvision  # the engines
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
import torchvision.transforms as transforms
from torchvision import datasets, transforms as T
from torch.utils.data import (
    DataLoader,  # batches
    random_split,
)
from torch.optim.lr_scheduler \\
    import StepLR
label = "é"; import torch.nn.functional  # after a non-ASCII string

try:
    from torch.utils.data import Subset
except ImportError:  # import torch
    Subset = None


def loaders(root):
    import torchvision.transforms
    from torchvision import datasets
    transform = transforms.Compose([transforms.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    train = datasets.CIFAR10(root, train=True, download=False, transform=transform)
    return DataLoader(train, batch_size=4, shuffle=True)
'''

CIFAR_PORTED = '''\
"""Train a CNN on CIFAR-10 (import torch, torchvision: only text here)."""
import os, sys
import kernelab as torch, kernelab.vision as torchvision  # the engines
import kernelab.nn as nn
import kernelab.nn.functional as F
import kernelab.optim as optim
import kernelab.vision.transforms as transforms
from kernelab.vision import datasets, transforms as T
from kernelab.utils.data import (
    DataLoader,  # batches
    random_split,
)
from kernelab.optim.lr_scheduler \\
    import StepLR
label = "é"; import kernelab as torch  # after a non-ASCII string

try:
    from kernelab.utils.data import Subset
except ImportError:  # import torch
    Subset = None


def loaders(root):
    import kernelab.vision as torchvision
    from kernelab.vision import datasets
    transform = transforms.Compose([transforms.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    train = datasets.CIFAR10(root, train=True, download=False, transform=transform)
    return DataLoader(train, batch_size=4, shuffle=True)
'''


def test_a_torchvision_cifar_script_changes_only_in_its_imports():
    port = port_source(CIFAR)
    assert port.text == CIFAR_PORTED
    assert port.rewritten == 12 and port.kept == [] and port.missing == []
    namespace: dict = {}
    exec(compile(port.text, "cifar.py", "exec"), namespace)  # every import resolves
    assert namespace["torchvision"].datasets is namespace["datasets"]


@pytest.mark.parametrize(
    ("statement", "ported"),
    [
        ("import torch as th", "import kernelab as th"),
        ("import torch.nn", "import kernelab as torch"),
        ("import torch.onnx", "import kernelab as torch"),
        ("import torchvision.datasets as D", "import kernelab.vision.datasets as D"),
        ("import numpy as np, torch.optim as optim", "import numpy as np, kernelab.optim as optim"),
        ("from torch import *", "from kernelab import *"),
        ("from torch . nn import (Conv2d)", "from kernelab.nn import (Conv2d)"),
        (
            "from torch import (  # import these\n    nn,\n)",
            "from kernelab import (  # import these\n    nn,\n)",
        ),
        ("from torch.nn import init, utils", "from kernelab.nn import init, utils"),
        (
            "from torchvision.transforms import functional as TF",
            "from kernelab.vision.transforms import functional as TF",
        ),
        ("from .torch import nn", "from .torch import nn"),
        ("import torchx, torch_geometric", "import torchx, torch_geometric"),
        (
            "if True: import torch.nn as nn; import torch",
            "if True: import kernelab.nn as nn; import kernelab as torch",
        ),
    ],
)
def test_one_statement(statement, ported):
    port = port_source(statement + "\n")
    assert port.text == ported + "\n" and port.kept == [] and port.missing == []


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("import torch.distributed", "torch.distributed"),
        ("import torch.nn.utils.rnn as rnn_utils", "torch.nn.utils.rnn"),
        ("from torch.nn.modules.loss import _Loss", "torch.nn.modules.loss"),
        ("from torch.utils.tensorboard import SummaryWriter", "torch.utils.tensorboard"),
        ("import torchvision.models as models", "torchvision.models"),
        ("from torch.functional import F", "torch.functional"),
    ],
)
def test_an_import_of_a_module_kernelab_lacks_is_left_as_is(statement, name):
    port = port_source(f"x = 1\n{statement}\n")
    assert port.text == f"x = 1\n{statement}\n" and port.rewritten == 0
    assert [(f.name, f.lines) for f in port.kept] == [(name, (2,))]
    assert port.kept[0].why.endswith("; import left as is")


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_other_line_endings_stay(newline):
    port = port_source(CIFAR.replace("\n", newline))
    assert port.text == CIFAR_PORTED.replace("\n", newline)


def test_the_pytorch_mnist_example_ports_to_the_script_on_the_docs_page():
    ported = (TESTS / "compat" / "scripts" / "mnist_example.py").read_text()
    original = re.sub(r"^(import|from) kernelab", r"\1 torch", ported, flags=re.MULTILINE)
    port = port_source(original)
    assert port.text == ported and port.rewritten == 6
    assert port.kept == [] and port.missing == []


@pytest.mark.parametrize("path", sorted((TESTS / "compat" / "programs").glob("*.py")))
def test_the_compatibility_programs_port_without_a_finding(path):
    """Programs that run on kernelab with their imports changed: nothing to report."""
    original = path.read_text()
    port = port_source(original)
    assert port.kept == [] and port.missing == []
    changed = [
        (a, b) for a, b in zip(original.splitlines(), port.text.splitlines(), strict=True) if a != b
    ]
    assert changed and len(changed) == port.rewritten
    assert all(re.fullmatch(r"(import|from) kernelab\b.*", b) for _, b in changed)


TINY = """\
import torch
import torch.nn as nn
import torch.nn.functional
import torch.optim
from torch.utils.data import DataLoader, TensorDataset

try:
    import torchvision.transforms

    normalize = torchvision.transforms.Normalize((0.5, 0.5), (0.25, 0.25))
except ImportError:  # PyTorch without torchvision: the same arithmetic
    normalize = lambda t: (t - 0.5) / 0.25  # noqa: E731
print(getattr(normalize, "__name__", type(normalize).__name__))

x = torch.arange(4 * 2 * 6 * 6, dtype=torch.float32).reshape(4, 2, 6, 6) / 288
y = torch.tensor([0, 1, 2, 1])
model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3))
with torch.no_grad():
    for i, p in enumerate(model.parameters()):
        p.copy_(torch.linspace(-0.1, 0.1, p.numel()).reshape(p.shape) * (-1) ** i)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for images, labels in DataLoader(TensorDataset(x, y), batch_size=2):
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(normalize(images[0])[None]), labels[:1])
    loss.backward()
    optimizer.step()
    print(f"{loss.item():.5f}")
"""


def run_python(source: str, tmp_path: Path, **env: str) -> str:
    script = tmp_path / "script.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(SRC), **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_ported_script_runs_on_kernelab_as_the_original_on_pytorch(tmp_path):
    """Imports without ``as`` (``import torch.nn.functional``) give ``torch.nn.functional``
    and ``torchvision.transforms`` on kernelab too."""
    port = port_source(TINY)
    assert port.missing == [] and "import kernelab as torch\n" in port.text
    ours = run_python(port.text, tmp_path, KERNELAB_KERNELS="numpy")
    theirs = run_python(TINY, tmp_path, OMP_NUM_THREADS="1")
    assert ours.split()[0] == "Normalize" and len(ours.split()) == 3
    losses = [float(loss) for loss in theirs.split()[1:]]
    assert [float(loss) for loss in ours.split()[1:]] == pytest.approx(losses, rel=1e-5)


MISSING = """\
import torch
import torch.nn as nn
from torch import nn as layers, fft
import torch.nn.functional as F
import torch.distributions as D
from torchvision.models import resnet18
from torchvision import transforms
import torch.distributed as dist
from torch.nn import Conv3d, Conv2d

model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.LayerNorm(2), layers.LayerNorm(2))
y = F.gelu(torch.fft.rfft(torch.zeros(4)))
jitter = transforms.ColorJitter(torch.Tensor.bernoulli_)
z = F.gelu(y) + torch.special.erf(y)
print(dist.get_rank(), D.Normal, resnet18)
"""


def findings(port) -> list[tuple[str, tuple[int, ...], str]]:
    return [(f.name, f.lines, f.why) for f in port.kept + port.missing]


def test_names_kernelab_lacks_are_found_with_their_lines():
    port = port_source(MISSING)
    lacks = "is not in kernelab"
    assert findings(port) == [
        ("torch.distributions", (5,), f"{lacks}; import left as is"),
        ("torchvision.models", (6,), "is not in kernelab.vision; import left as is"),
        (
            "torch.distributed",
            (8,),
            f"{lacks} ({porting.OWN_MODULES['kernelab.distributed']}); import left as is",
        ),
        ("torch.fft", (3, 12), lacks),
        ("torch.nn.Conv3d", (9,), lacks),
        ("torch.nn.LayerNorm", (11,), lacks),
        ("torch.nn.functional.gelu", (12, 14), lacks),
        ("torch.Tensor.bernoulli_", (13,), lacks),
        ("torchvision.transforms.ColorJitter", (13,), "is not in kernelab.vision"),
        ("torch.special", (14,), lacks),
    ]
    assert port.rewritten == 6


def test_the_report_has_a_line_per_finding_and_a_summary():
    lines = porting.report(port_source(MISSING), "script.py")
    assert lines[0] == "script.py:3: torch.fft is not in kernelab (also line 12)"
    assert "script.py:9: torch.nn.Conv3d is not in kernelab" in lines
    assert "script.py:12: torch.nn.functional.gelu is not in kernelab (also line 14)" in lines
    assert lines[-1].startswith("script.py: 6 import statements rewritten, 3 left as is; ")
    assert "7 names kernelab lacks; tensor methods (x.foo()) are not checked" in lines[-1]


NO_FALSE_ALARMS = """\
import torch
import torch.nn as nn
from torch.utils import data
import numpy as np
import torch.optim as optim

torch.backends.cudnn.benchmark = True
torch.backends.cudnn.anything = False
x = np.zeros(3).anything
print(nn.Module.training, torch.Tensor.grad, torch.Tensor.requires_grad, torch.float32.itemsize)


class Net(nn.Module):
    optim = "not the module"

    def forward(self, x):
        return optim.SGD, x.anything_tensorlike()


def train(nn, loader, F=None):
    for data, target in loader:
        data.anything()
    nn.anything()
    F.gelu(target)
    square = lambda torch: torch.anything
    return [data.anything for data in loader], {torch.anything for torch in loader}


def evaluate():
    global optim
    optim = None
    return optim.anything
"""


def test_local_names_attribute_stores_and_tensor_methods_are_no_alarm():
    assert port_source(NO_FALSE_ALARMS).missing == []


SCOPES = """\
class Config:
    import torch.nn as layers

    norm = layers.LayerNorm

    def build(self):
        return layers.Conv3d  # not the class's name: a global one, here undefined


def outer():
    F = None

    def inner():
        import torch.nn.functional as F

        return F.gelu

    return F.gelu, inner
"""


def test_a_class_body_and_a_nested_function_see_their_own_names():
    port = port_source(SCOPES)
    assert [(f.name, f.lines) for f in port.missing] == [
        ("torch.nn.LayerNorm", (4,)),
        ("torch.nn.functional.gelu", (16,)),
    ]


def test_a_script_already_ported_is_checked_too():
    port = port_source(port_source(MISSING).text)
    assert port.rewritten == 0
    assert ("torch.nn.Conv3d", (9,), "is not in kernelab") in findings(port)
    assert ("torch.nn.functional.gelu", (12, 14), "is not in kernelab") in findings(port)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("import torch\ndef f(:\n", "script.py:2: cannot parse: "),
        ("import torch\n\0", "script.py: cannot parse: "),
    ],
)
def test_a_script_that_does_not_parse_is_a_port_error(text, message):
    with pytest.raises(PortError, match=re.escape(message)):
        port_source(text, "script.py")


def test_unreadable_scripts_are_port_errors(tmp_path):
    with pytest.raises(PortError, match="no script at "):
        porting.port_file(tmp_path / "none.py")
    with pytest.raises(PortError, match="cannot read "):
        porting.port_file(tmp_path)
    (tmp_path / "bad.py").write_bytes(b"x = '\xff'\n")
    with pytest.raises(PortError, match="cannot read .*bad.py"):
        porting.port_file(tmp_path / "bad.py")


# ---- writing in place
@pytest.mark.parametrize(
    ("raw", "ported"),
    [
        (b"import torch\r\nx = 1  # kept\r\n", b"import kernelab as torch\r\nx = 1  # kept\r\n"),
        (
            b"# -*- coding: latin-1 -*-\nimport torch\nname = '\xe9'\n",
            b"# -*- coding: latin-1 -*-\nimport kernelab as torch\nname = '\xe9'\n",
        ),
        (
            b"\xef\xbb\xbfimport torch.nn as nn\nname = '\xc3\xa9'\n",
            b"\xef\xbb\xbfimport kernelab.nn as nn\nname = '\xc3\xa9'\n",
        ),
    ],
)
def test_write_keeps_the_original_and_the_encoding(tmp_path, raw, ported):
    script = tmp_path / "script.py"
    script.write_bytes(raw)
    script.chmod(0o750)
    orig = porting.write_ported(script, porting.port_file(script))
    assert orig == tmp_path / "script.py.orig" and orig.read_bytes() == raw
    assert script.read_bytes() == ported and script.stat().st_mode & 0o777 == 0o750
    assert orig.stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py", "script.py.orig"]


def test_write_through_a_symbolic_link_ports_the_file_it_points_to(tmp_path):
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "script.py", tmp_path / "link.py"
    target.write_text("import torch\n")
    link.symlink_to(target)
    orig = porting.write_ported(link, porting.port_file(link))
    assert link.is_symlink() and target.read_text() == "import kernelab as torch\n"
    assert orig == target.with_name("script.py.orig") and orig.read_text() == "import torch\n"


def test_write_never_overwrites_an_orig(tmp_path):
    script, orig = tmp_path / "script.py", tmp_path / "script.py.orig"
    script.write_text("import torch\n")
    orig.write_text("the first original\n")
    with pytest.raises(PortError, match="script.py.orig exists"):
        porting.write_ported(script, porting.port_file(script))
    assert script.read_text() == "import torch\n" and orig.read_text() == "the first original\n"


def test_a_failed_write_leaves_the_script_as_it_was(tmp_path, monkeypatch):
    script = tmp_path / "script.py"
    script.write_text("import torch\n")
    port = porting.port_file(script)

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(porting.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        porting.write_ported(script, port)
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]
    assert script.read_text() == "import torch\n"


def test_write_refuses_a_script_changed_since_it_was_ported(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import torch\n")
    port = porting.port_file(script)
    script.write_text("import torch  # edited\n")
    with pytest.raises(PortError, match="changed while"):
        porting.write_ported(script, port)
    assert [p.name for p in tmp_path.iterdir()] == ["script.py"]


DOCS_EXAMPLE = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms
from torch.utils.tensorboard import SummaryWriter

transform = transforms.Compose([
    transforms.RandomResizedCrop(32),
    transforms.ToTensor(),
    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
])
trainset = torchvision.datasets.CIFAR10(root="./data", train=True, transform=transform)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=4, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.norm = nn.GroupNorm(2, 6)
        self.fc = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        x = F.max_pool2d(F.gelu(self.norm(self.conv1(x))), 2)
        return self.fc(torch.flatten(x, 1))
"""


def test_the_docs_page_shows_what_the_command_prints(tmp_path, monkeypatch, capsys):
    page = (TESTS.parent / "docs" / "coming-from-pytorch.md").read_text()
    section = page.split("## Porting a script: `kernelab port`")[1].split("\n## ")[0]
    shown = section.split("```text\n")[1].split("```")[0].splitlines()
    assert shown[0] == "$ kernelab port train.py > train_kl.py"
    monkeypatch.chdir(tmp_path)
    Path("train.py").write_text(DOCS_EXAMPLE)
    assert cli.main(["port", "train.py"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == shown[1:]
    assert out == port_source(DOCS_EXAMPLE).text
