"""The training side of a run: learning curves, and the test set with the trained model's errors.

Learning curves come from ``RUN/metrics.json``. The test set is loaded only if it is on this
machine (``download=False``); the trained model (never a session's edited copy) classifies it
once, in a background thread, for the confusion matrix and the misclassified images.
When the data cannot be had, :meth:`TestSet.summary` says why and the page hides the picker.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np

from ... import data
from ...autograd import no_grad
from ...core.tensor import Tensor
from .compute import ExplainError
from .inputs import encode_pixels
from .source import Source

GALLERY = 64  # misclassified images sent to the page, most confident mistakes first
BATCH = 500


def learning_curves(source: Source) -> list[dict] | None:
    """The per-epoch rows of ``RUN/metrics.json`` (losses, accuracies, lr), or None."""
    if source.run_dir is None:
        return None
    path = Path(source.run_dir) / "metrics.json"
    try:
        rows = json.loads(path.read_text()).get("epochs")
    except (OSError, ValueError, AttributeError):
        return None
    return rows if isinstance(rows, list) else None


class TestSet:
    """The run's test images, and what the trained model makes of them.

    Reading the images is quick and happens on first use; classifying them all takes a while
    (seconds for MNIST), so it runs once in a background thread and :meth:`summary` says
    ``ready: false`` until it is done.
    """

    def __init__(self, source: Source):
        self.source = source
        self._lock = threading.Lock()
        self._loaded = False
        self._classifier: threading.Thread | None = None
        self.reason: str | None = None
        self.images = self.labels = self.predicted = self.confidence = None
        self.classes: list[str] = list(source.classes)
        self.origin = ""

    def start(self) -> None:
        """Load the images and start classifying them now rather than on first request."""
        if self.ensure():
            self._classify_in_background()

    def ensure(self) -> bool:
        """Load the images unless done; True when the test set is available."""
        with self._lock:
            if not self._loaded:
                try:
                    self._load()
                except Exception as error:  # any failure only hides the test-set features
                    self.reason = f"test set unavailable: {str(error).splitlines()[0]}"
                self._loaded = True
        return self.reason is None

    @property
    def ready(self) -> bool:
        return self.predicted is not None

    def _load(self) -> None:
        config = self.source.config
        if "data" not in config:
            raise LookupError("the run records no dataset")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a fallback subset is fine; ``source`` says so
            splits = data.load_dataset(
                config["data"], root=config.get("data_dir"), download=False, progress=False
            )
        images = splits.test_images
        images = images[:, None] if images.ndim == 3 else images  # (N, C, H, W)
        if tuple(images.shape[1:]) != self.source.input_shape:
            raise ValueError(
                f"its images are {images.shape[1:]}, the model takes {self.source.input_shape}"
            )
        self.images, self.labels = images, splits.test_labels
        self.classes, self.origin = [str(c) for c in splits.classes], splits.source

    def _classify_in_background(self) -> None:
        with self._lock:
            if self._classifier is None:
                self._classifier = threading.Thread(
                    target=self._classify, daemon=True, name="explain-testset"
                )
                self._classifier.start()

    def _classify(self) -> None:
        """The trained model's class and confidence for every test image."""
        predicted, confidence = [], []
        with no_grad():
            for start in range(0, len(self.images), BATCH):
                batch = data.normalize_pixels(  # normalised as the training did
                    self.images[start : start + BATCH], self.source.mean, self.source.std
                )
                logits = self.source.model(Tensor(batch)).array.astype(np.float64)
                exp = np.exp(logits - logits.max(axis=1, keepdims=True))
                probabilities = exp / exp.sum(axis=1, keepdims=True)
                predicted.append(probabilities.argmax(axis=1))
                confidence.append(probabilities.max(axis=1))
        self.confidence = np.concatenate(confidence)
        self.predicted = np.concatenate(predicted)  # set last: ``ready`` looks at it

    def wait(self, timeout: float | None = None) -> bool:
        """Classify (in the background) and wait for it; True when done."""
        if not self.ensure():
            return False
        self._classify_in_background()
        self._classifier.join(timeout)
        return self.ready

    def summary(self) -> dict:
        """Availability; once classified, accuracy, confusion matrix and the worst mistakes."""
        if not self.ensure():
            return {"available": False, "reason": self.reason}
        self._classify_in_background()
        head = {
            "available": True,
            "ready": self.ready,
            "source": self.origin,
            "count": int(len(self.labels)),
            "classes": self.classes,
        }
        if not self.ready:
            return head
        n = len(self.classes)
        matrix = np.zeros((n, n), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        wrong = np.flatnonzero(self.predicted != self.labels)
        wrong = wrong[np.argsort(-self.confidence[wrong], kind="stable")][:GALLERY]
        return {
            **head,
            "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
            "confusion": matrix.tolist(),
            "misclassified": [
                {
                    "index": int(i),
                    "label": int(self.labels[i]),
                    "predicted": int(self.predicted[i]),
                    "confidence": float(self.confidence[i]),
                }
                for i in wrong
            ],
            "pixels": encode_pixels(self.images[wrong]),  # (n, C, H, W) uint8
        }

    def image(self, index) -> dict:
        """One test image as pixels (C, H, W), its label, and the trained model's class once
        known (None before)."""
        if not self.ensure():
            raise ExplainError(self.reason, 404)
        if not isinstance(index, int) or not 0 <= index < len(self.labels):
            raise ExplainError(
                f"test image index {index!r} is out of range: 0 to {len(self.labels) - 1}"
            )
        predicted = int(self.predicted[index]) if self.ready else None
        return {
            "index": index,
            "label": int(self.labels[index]),
            "predicted": predicted,
            "pixels": encode_pixels(self.images[index]),
        }
