"""``torch.backends.cudnn``: the flags scripts set for reproducibility, kept and ignored
(kernelab's CPU kernels are deterministic and have no algorithm search)."""

enabled = True
benchmark = False
deterministic = False


def is_available() -> bool:
    return False


def version() -> None:
    return None
