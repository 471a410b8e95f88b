"""PyTorch's MNIST example in small: ``torchvision.datasets.MNIST`` read from its raw files
through ``transforms.Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])``, a DataLoader
in file order, a small CNN trained with SGD and momentum, then the example's test loop
(summed loss, ``argmax(dim=1, keepdim=True)``, ``eq(target.view_as(pred))``)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 5, 2)
        self.conv2 = nn.Conv2d(4, 8, 3, 1)
        self.fc1 = nn.Linear(8 * 5 * 5, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def make_model():
    return Net()


def train(initial, data, epochs=2):
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    train_set = datasets.MNIST(data["root"], train=True, download=False, transform=transform)
    test_set = datasets.MNIST(data["root"], train=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=8, shuffle=False)
    test_loader = DataLoader(test_set, batch_size=5)
    image, label = train_set[3]
    record = {"sample": image.numpy().copy(), "sample_label": [label]}
    model = Net()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    record.update(loss=[], test_loss=[], correct=[])
    for _epoch in range(epochs):
        model.train()
        for images, target in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(images), target)
            loss.backward()
            optimizer.step()
            record["loss"].append(loss.item())
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for images, target in test_loader:
                output = model(images)
                test_loss += F.nll_loss(output, target, reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
        record["test_loss"].append(test_loss / len(test_loader.dataset))
        record["correct"].append(correct)
    record["final"] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    return record
