"""A tutorial-style PyTorch CNN script on torchvision's MNIST runs with only its imports
changed to kernelab and kernelab.vision, and learns."""

import runpy
from pathlib import Path

from mnist_files import write_bar_mnist
from PIL import Image

SCRIPT = """
import kernelab as torch  # import torch
import kernelab.nn as nn  # import torch.nn as nn
import kernelab.nn.functional as F  # import torch.nn.functional as F
import kernelab.optim as optim  # import torch.optim as optim
import kernelab.vision as torchvision  # import torchvision
from kernelab.vision import datasets, transforms  # from torchvision import datasets, transforms
from kernelab.utils.data import DataLoader  # from torch.utils.data import DataLoader

torch.manual_seed(0)
train_transform = transforms.Compose([
    transforms.RandomCrop(28, padding=1),
    transforms.ToTensor(),
    transforms.Normalize((0.1307,), (0.3081,)),
])
test_transform = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
)
train_set = datasets.MNIST(ROOT, train=True, download=False, transform=train_transform)
test_set = torchvision.datasets.MNIST(ROOT, train=False, transform=test_transform)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
test_loader = DataLoader(test_set, batch_size=100)

images, labels = next(iter(train_loader))
torchvision.utils.save_image(torchvision.utils.make_grid(images[:16], normalize=True), GRID)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 4)
        return self.fc(torch.flatten(x, 1))


model = Net()
optimizer = optim.Adam(model.parameters(), lr=0.01)
for epoch in range(2):
    model.train()
    for data, target in train_loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()

model.eval()
correct = 0
with torch.no_grad():
    for data, target in test_loader:
        correct += (model(data).argmax(dim=1) == target).sum().item()
accuracy = 100.0 * correct / len(test_loader.dataset)
print(f"Accuracy: {correct}/{len(test_set)} ({accuracy:.0f}%)")
"""


def test_tutorial_script_runs_and_learns(tmp_path, capsys):
    write_bar_mnist(tmp_path / "MNIST" / "raw", train=320, test=100)
    script = tmp_path / "tutorial.py"
    script.write_text(SCRIPT)
    grid = tmp_path / "grid.png"
    result = runpy.run_path(str(script), {"ROOT": str(tmp_path), "GRID": str(grid)})
    assert result["accuracy"] >= 80, capsys.readouterr().out
    assert result["images"].shape == (32, 1, 28, 28) and grid.is_file()
    assert "Accuracy: " in capsys.readouterr().out


CIFAR_SCRIPT = """
import numpy as np

import kernelab as torch  # import torch
import kernelab.vision as torchvision  # import torchvision
import kernelab.vision.transforms as transforms  # import torchvision.transforms as transforms

transform = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
)
batch_size = 4
trainset = torchvision.datasets.CIFAR10(root=ROOT, train=True, download=True, transform=transform)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size, shuffle=True,
                                          num_workers=2)
classes = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def imshow(img):
    img = img / 2 + 0.5  # unnormalize
    npimg = img.numpy()
    return np.transpose(npimg, (1, 2, 0))


dataiter = iter(trainloader)
images, labels = next(dataiter)
shown = imshow(torchvision.utils.make_grid(images))
print(" ".join(f"{classes[labels[j]]:5s}" for j in range(batch_size)))
"""


def test_cifar_tutorial_data_lines(cifar10_binary, tmp_path, capsys):
    root, _ = cifar10_binary
    script = tmp_path / "cifar_tutorial.py"
    script.write_text(CIFAR_SCRIPT)
    result = runpy.run_path(str(script), {"ROOT": str(root)})
    assert result["shown"].shape == (36, 2 + 4 * 34, 3)  # one row of four 32x32 images
    assert result["shown"].min() >= 0 and result["shown"].max() <= 1
    assert len(capsys.readouterr().out.split()) == 4


def test_the_example_on_the_page_runs(tmp_path, monkeypatch):
    page = (Path(__file__).parents[2] / "docs" / "coming-from-pytorch.md").read_text()
    section = page[page.index("## Vision data") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    write_bar_mnist(tmp_path / "data" / "MNIST" / "raw", train=70, test=10)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "coming-from-pytorch.md", "exec"), {})
    assert Image.open(tmp_path / "batch.png").size == (2 + 8 * 30, 2 + 8 * 30)
