"""A small residual network with batch norm, trained with SGD (momentum, Nesterov, weight
decay), gradient clipping and ReduceLROnPlateau on a validation loss.

Exercises ``out += identity`` inside the graph, ``nn.Sequential()`` as an empty shortcut,
``model.apply`` with ``nn.init``, ``train()``/``eval()`` switching batch norm's statistics,
``torch.no_grad`` and ``nn.utils.clip_grad_norm_``. Dropout is 0 for the comparison.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x):
        identity = self.shortcut(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, num_classes=5, dropout=0.2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(inplace=True),
        )
        self.layers = nn.ModuleList([BasicBlock(8, 8), BasicBlock(8, 16, stride=2)])
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return self.fc(self.dropout(x))


def init_weights(m):
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)


def make_model():
    model = ResNet()
    model.apply(init_weights)
    return model


def train(initial, data, epochs=4, batch_size=8):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ResNet(dropout=0.0).to(device)
    model.load_state_dict({k: torch.as_tensor(v) for k, v in initial.items()})
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, "min", factor=0.5, patience=0, threshold=0.05
    )
    x_train, y_train = torch.tensor(data["x"]), torch.tensor(data["y"])
    x_val, y_val = torch.tensor(data["x_val"]), torch.tensor(data["y_val"])
    record = {"loss": [], "grad_norm": [], "val_loss": [], "lr": []}
    for _epoch in range(epochs):
        model.train()
        for start in range(0, x_train.shape[0], batch_size):
            inputs = x_train[start : start + batch_size].to(device)
            targets = y_train[start : start + batch_size].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(inputs), targets)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=2.0)
            optimizer.step()
            record["loss"].append(loss.item())
            record["grad_norm"].append(float(norm))
        model.eval()
        with torch.no_grad():
            val_loss = criterion(model(x_val), y_val).item()
        scheduler.step(val_loss)
        record["val_loss"].append(val_loss)
        record["lr"].append(optimizer.param_groups[0]["lr"])
    record["final"] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    return record
