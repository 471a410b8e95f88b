"""A DataLoader loop over a TensorDataset with a per-epoch sample order, Adam with cosine
annealing, label smoothing, a checkpoint saved and restored mid-run, and the everyday tensor
code around a training loop: standardising with mean and std, ``torch.cat`` of predictions,
``max(1)``, accuracy as a float mean.

The shuffled order is given (``data["orders"]``) and imposed with ``Subset``, so both engines
see the same batches; what a shuffling DataLoader does is tested on its own.
"""

import os

import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, Subset, TensorDataset


def make_model(features=12, classes=4):
    return nn.Sequential(
        nn.Linear(features, 32),
        nn.ReLU(),
        nn.Dropout(p=0.0),
        nn.Linear(32, 16),
        nn.Tanh(),
        nn.Linear(16, classes),
    )


def evaluate(model, loader):
    model.eval()
    predictions, targets, probabilities = [], [], []
    with torch.no_grad():
        for xb, yb in loader:
            logits = model(xb)
            _, predicted = torch.max(logits, 1)
            predictions.append(predicted)
            targets.append(yb)
            probabilities.append(torch.softmax(logits, dim=1).max(dim=1).values)
    predictions, targets = torch.cat(predictions), torch.cat(targets)
    accuracy = (predictions == targets).float().mean().item()
    return accuracy, torch.cat(probabilities).mean().item()


def train(initial, data, epochs=3, batch_size=10):
    x = torch.from_numpy(data["x"])
    mean, std = x.mean(dim=0, keepdim=True), x.std(dim=0, keepdim=True)
    x = (x - mean) / std
    dataset = TensorDataset(x, torch.from_numpy(data["y"]).long())
    model = make_model()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    optimizer = optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    record = {"loss": [], "accuracy": [], "confidence": [], "lr": []}
    for epoch in range(epochs):
        model.train()
        order = data["orders"][epoch].tolist()
        loader = DataLoader(
            Subset(dataset, order),
            batch_size=batch_size,
            shuffle=False,
            drop_last=True,
            num_workers=0,
        )
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            record["loss"].append(loss.item())
        scheduler.step()
        record["lr"].append(scheduler.get_last_lr()[0])
        accuracy, confidence = evaluate(model, DataLoader(dataset, batch_size=16))
        record["accuracy"].append(accuracy)
        record["confidence"].append(confidence)
        if epoch == 1:  # a checkpoint: save, spoil the weights, restore
            path = os.path.join(data["directory"], "checkpoint.pt")
            torch.save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "loss": loss.item(),
                },
                path,
            )
            with torch.no_grad():
                for p in model.parameters():
                    p.zero_()
            checkpoint = torch.load(path, weights_only=True)
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            record["restored_epoch"] = checkpoint["epoch"]
    record["final"] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    return record
