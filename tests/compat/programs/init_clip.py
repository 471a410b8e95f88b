"""A small CNN initialised through ``.data`` and trained with clipped gradients.

``make_model`` draws its weights the way many scripts do: ``m.weight.data.normal_(0, 0.02)``,
``m.bias.data.fill_(0)``, ``nn.init.*`` inside ``model.apply``. Random draws differ between
engines, so ``train`` starts from weights given to it and then edits them deterministically
through ``.data`` and ``nn.init`` (``fill_``, ``mul_``, ``copy_``, ``clamp_``, ``constant_``,
``ones_``). Each step clips the gradients three ways: ``clip_grad_norm_``,
``clip_grad_value_`` and ``p.grad.data.clamp_``; the loss's ``grad_fn`` graph is recorded by
its node names.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc1 = nn.Linear(6 * 3 * 3, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(F.max_pool2d(x, 2), 1)
        x = torch.tanh(self.fc1(x))
        return self.fc3(F.relu(self.fc2(x)) + x)


def init_weights(m):
    if isinstance(m, nn.Conv2d):
        m.weight.data.normal_(0.0, 0.02)
        if m.bias is not None:
            m.bias.data.fill_(0)
    elif isinstance(m, nn.BatchNorm2d):
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)
    elif isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        nn.init.zeros_(m.bias)


def make_model():
    model = Net()
    model.apply(init_weights)
    return model


def edit_weights(model):
    """Deterministic edits through ``.data`` and ``nn.init``, in the styles scripts use."""
    model.conv1.bias.data.fill_(0.01)
    model.conv1.weight.data.mul_(5.0)
    model.conv2.weight.data.clamp_(-0.03, 0.03)
    model.fc2.weight.data.copy_(model.fc1.weight.data[:16, :16])
    model.fc2.bias.data = model.fc1.bias.data.clone() + 0.1  # rebinding .data
    nn.init.constant_(model.fc3.bias, 0.05)
    nn.init.ones_(model.bn2.weight)
    with torch.no_grad():
        model.bn1.weight.mul_(2.0)
        model.fc3.weight.copy_(model.fc3.weight.clamp(-0.4, 0.4))


def graph_names(node):
    """The node names of the graph under ``node``, depth first, each node once."""
    names, seen, stack = [], set(), [node]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.append(node.name())
        stack.extend(reversed([child for child, _ in node.next_functions]))
    return names


def train(initial, data, steps=6):
    model = Net()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    edit_weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
    record = {"loss": [], "total_norm": [], "clipped_norm": []}
    for step in range(steps):
        part = slice(8 * (step % 2), 8 * (step % 2) + 8)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images[part]), labels[part])
        loss.backward()
        if step == 0:
            record["grad_fn"] = loss.grad_fn.name()
            record["graph"] = graph_names(loss.grad_fn)
        total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.2)
        for p in model.parameters():
            p.grad.data.clamp_(-0.1, 0.1)
        grads = [p.grad for p in model.parameters()]
        record["clipped_norm"].append(torch.stack([g.norm() for g in grads]).norm().item())
        optimizer.step()
        record["loss"].append(loss.item())
        record["total_norm"].append(total.item())
    record["final"] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    return record
