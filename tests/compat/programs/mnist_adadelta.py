"""PyTorch's MNIST example (pytorch/examples, mnist/main.py): its network and its loop.

Two convolutions, max pooling, dropout, two dense layers, log-softmax and NLL loss, trained
with Adadelta and StepLR from a DataLoader over a TensorDataset; the test pass sums the loss
and counts correct predictions as the example does. Dropout is made 0 for the comparison:
the two engines draw different masks.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, p1=0.25, p2=0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(p1)
        self.dropout2 = nn.Dropout(p2)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def make_model():
    return Net()


def train(initial, data, epochs=2, batch_size=8):
    use_accel = torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    model = Net(0.0, 0.0).to(device)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    train_set = TensorDataset(torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]))
    train_loader = DataLoader(train_set, batch_size=batch_size)
    test_images = torch.from_numpy(data["test_images"]).to(device)
    test_labels = torch.from_numpy(data["test_labels"]).to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    record = {"loss": [], "test_loss": [], "correct": [], "lr": []}
    for _epoch in range(1, epochs + 1):
        model.train()
        for _batch_idx, (x, target) in enumerate(train_loader):
            x, target = x.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(x)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            record["loss"].append(loss.item())
        model.eval()
        test_loss, correct = 0, 0
        with torch.no_grad():
            output = model(test_images)
            test_loss += F.nll_loss(output, test_labels, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(test_labels.view_as(pred)).sum().item()
        record["test_loss"].append(test_loss / len(test_labels))
        record["correct"].append(correct)
        scheduler.step()
        record["lr"].append(scheduler.get_last_lr()[0])
    record["final"] = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    return record
