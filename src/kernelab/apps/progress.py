"""A live progress line: tqdm when installed, a plain line rewritten in place otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts images through an epoch and shows loss, accuracy, images/s and time left."""

    def __init__(self, total: int, description: str, enabled: bool = True):
        self.total, self.description, self.enabled = total, description, enabled
        self.done, self.start, self.last_draw = 0, time.perf_counter(), 0.0
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=description, unit="img", leave=True)
            except ImportError:
                pass

    def update(self, images: int, **metrics: float) -> None:
        self.done += images
        if not self.enabled:
            return
        text = {k: f"{v:.4g}" for k, v in metrics.items()}
        if self.bar is not None:
            self.bar.set_postfix(text, refresh=False)
            self.bar.update(images)
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.5 and self.done < self.total:
            return
        self.last_draw = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / max(rate, 1e-9)
        fields = " ".join(f"{k}={v}" for k, v in text.items())
        line = (
            f"\r{self.description} {self.done}/{self.total} {fields} {rate:.0f} img/s "
            f"ETA {left:.0f}s"
        )
        sys.stderr.write(line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            sys.stderr.write("\n")
