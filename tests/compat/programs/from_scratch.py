"""A network written with tensors and autograd alone, updated by hand (the style of PyTorch's
"Learning PyTorch with Examples"): ``mm``, ``clamp``, ``pow``, ``where``, ``sigmoid``,
reductions with ``dim``, and ``w -= lr * w.grad`` under ``torch.no_grad()``.

Gradients are cleared with ``w.grad = None``: in kernelab ``.grad`` is a NumPy array, which
has no ``zero_()``.
"""

import torch


def make_model():
    return None


def train(initial, data, steps=25, learning_rate=1e-3):
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    w1 = torch.tensor(initial["w1"], requires_grad=True)
    w2 = torch.tensor(initial["w2"], requires_grad=True)
    b1 = torch.zeros(w1.shape[1], requires_grad=True)
    record = {"loss": []}
    for _t in range(steps):
        h = x.mm(w1).add(b1).clamp(min=0)
        h = torch.where(h > 1.0, h, h * 0.5)
        y_pred = h.mm(w2)
        spread = y_pred.std(dim=0).mean() + y_pred.var(dim=1, unbiased=False).mean()
        peak = torch.sigmoid(y_pred).max(dim=1).values.mean() + y_pred.abs().max()
        loss = (y_pred - y).pow(2).sum() + 0.1 * spread + 0.01 * peak
        record["loss"].append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            b1 -= learning_rate * b1.grad
            w1.grad = None
            w2.grad = None
            b1.grad = None
    record["final"] = {
        "w1": w1.detach().numpy().copy(),
        "w2": w2.detach().numpy().copy(),
        "b1": b1.detach().numpy().copy(),
    }
    return record
