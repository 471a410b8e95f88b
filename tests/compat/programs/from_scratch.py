"""A network written with tensors and autograd alone, updated by hand (the style of PyTorch's
"Learning PyTorch with Examples"): ``mm``, ``clamp``, ``pow``, ``where``, ``sigmoid``,
reductions with ``dim``, and the update under ``torch.no_grad()`` in both of its usual forms,
``w -= lr * w.grad`` and ``w.data -= lr * w.grad.data``.

Each step accumulates the gradients of two half-batches (two ``backward`` calls add into the
same ``.grad`` tensors) and clears them with ``w.grad.zero_()``, so the ``.grad`` tensor of a
weight is one object from the first step to the last.
"""

import operator

import torch


def make_model():
    return None


def half_batch_loss(x, y, w1, w2, b1):
    h = x.mm(w1).add(b1).clamp(min=0)
    h = torch.where(h > 1.0, h, h * 0.5)
    y_pred = h.mm(w2)
    spread = y_pred.std(dim=0).mean() + y_pred.var(dim=1, unbiased=False).mean()
    peak = torch.sigmoid(y_pred).max(dim=1).values.mean() + y_pred.abs().max()
    return (y_pred - y).pow(2).sum() + 0.1 * spread + 0.01 * peak


def train(initial, data, steps=25, learning_rate=1e-3):
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    w1 = torch.tensor(initial["w1"], requires_grad=True)
    w2 = torch.tensor(initial["w2"], requires_grad=True)
    b1 = torch.zeros(w1.shape[1], requires_grad=True)
    half = x.shape[0] // 2
    record = {"loss": [], "grad_norm": [], "same_grad_object": []}
    first_grads = None
    for _t in range(steps):
        loss = 0.0
        for part in (slice(0, half), slice(half, None)):
            part_loss = half_batch_loss(x[part], y[part], w1, w2, b1)
            part_loss.backward()  # adds into w.grad
            loss += part_loss.item()
        record["loss"].append(loss)
        grads = (w1.grad, w2.grad, b1.grad)
        record["grad_norm"].append([g.norm().item() for g in grads])
        first_grads = first_grads or grads
        record["same_grad_object"].append(all(map(operator.is_, grads, first_grads)))
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            b1 -= learning_rate * b1.grad
        w2.data -= learning_rate * w2.grad.data  # .data: outside the graph, no no_grad needed
        for w in (w1, w2, b1):
            w.grad.zero_()
    record["final"] = {
        "w1": w1.detach().numpy().copy(),
        "w2": w2.detach().numpy().copy(),
        "b1": b1.detach().numpy().copy(),
    }
    return record
