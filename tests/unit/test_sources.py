"""Every source that works offline: digits, folder, and the official formats on tiny files."""

import gzip
import json
import pickle
import socket

import numpy as np
import pytest
from PIL import Image

from genbench.config.data import DataParams
from genbench.core.errors import DataError
from genbench.data import sources
from genbench.data.download import download
from genbench.data.sources import read_idx, read_raw


def mark_source(raw, source):
    (raw / sources.SOURCE_FILE).write_text(json.dumps({"source": source}))


def write_idx(path, array, gz=False):
    """An unsigned-byte IDX file as in the official MNIST distribution."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


def write_tiny_mnist(raw, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        image_file, label_file = sources.IDX_FILES[split]
        write_idx(raw / image_file, images)
        write_idx(raw / label_file, labels)
        arrays[split] = (images, labels)
    return arrays


def test_digits_download_and_read(tmp_path):
    raw = download(DataParams(source="digits"), tmp_path / "raw")
    data = read_raw(raw, "digits")
    assert data.images.shape == (1797, 8, 8, 1)
    assert data.images.dtype == np.uint8
    assert data.images.max() == 255 and data.images.min() == 0
    assert sorted(set(data.labels.tolist())) == list(range(10))
    assert data.is_test is None


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist"])
def test_idx_sources_keep_the_official_split(tmp_path, source):
    arrays = write_tiny_mnist(tmp_path)
    mark_source(tmp_path, source)
    data = read_raw(tmp_path, source)
    assert data.images.shape == (17, 28, 28, 1)
    assert data.is_test.sum() == 5
    np.testing.assert_array_equal(data.images[~data.is_test][..., 0], arrays["train"][0])
    np.testing.assert_array_equal(data.labels[data.is_test], arrays["test"][1])
    assert len(data.classes) == 10
    assert ("Ankle boot" in data.classes) == (source == "fashion_mnist")


def test_idx_reads_gzip_and_refuses_truncation(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    write_idx(tmp_path / "b", array)
    (tmp_path / "b").write_bytes((tmp_path / "b").read_bytes()[:-3])
    with pytest.raises(DataError, match="expected"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes(b"\x89PNG....")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "c")


def test_cifar10_batches(tmp_path):
    root = tmp_path / sources.CIFAR_DIR
    root.mkdir()
    rng = np.random.default_rng(1)
    expected = {}
    for name in (*sources.CIFAR_TRAIN, *sources.CIFAR_TEST):
        data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 3).tolist()
        with open(root / name, "wb") as handle:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, handle)
        expected[name] = data
    with open(root / "batches.meta", "wb") as handle:
        pickle.dump(
            {"label_names": ["airplane", "automobile"] + [f"c{i}" for i in range(8)]}, handle
        )
    mark_source(tmp_path, "cifar10")
    data = read_raw(tmp_path, "cifar10")
    assert data.images.shape == (18, 32, 32, 3)
    assert data.is_test.sum() == 3
    # Channel-planar rows become HWC: pixel (0, 0) of image 0 is data[0, [0, 1024, 2048]].
    first = expected[sources.CIFAR_TRAIN[0]][0]
    np.testing.assert_array_equal(data.images[0, 0, 0], first[[0, 1024, 2048]])
    assert data.classes[1] == "automobile"


def make_folder(root, mode, classes=("cat", "dog"), per_class=5, size=(12, 10), corrupt=1):
    """PNGs in class subfolders (or at the top when classes is empty), plus corrupt files."""
    rng = np.random.default_rng(2)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    for name in classes or ("",):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                root / name / f"{i}.png"
            )
    for i in range(corrupt):
        (root / (classes[0] if classes else "") / f"broken{i}.png").write_bytes(b"not a png at all")
    (root / "notes.txt").write_text("ignored: not an image")
    return root


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("RGB", 3)])
def test_folder_with_labels_and_a_corrupt_file(tmp_path, capsys, mode, channels):
    folder = make_folder(tmp_path / "imgs", mode)
    raw = download(
        DataParams(source="folder", folder=str(folder), max_bad_fraction=0.2), tmp_path / "raw"
    )
    data = read_raw(raw, "folder", max_bad_fraction=0.2)
    assert len(data.images) == 10
    assert all(a.shape == (10, 12, channels) for a in data.images)
    assert data.classes == ["cat", "dog"]
    assert data.labels.tolist() == [0] * 5 + [1] * 5
    assert data.bad_files == ["cat/broken0.png"]
    assert "1 of 11 image files could not be read: cat/broken0.png" in capsys.readouterr().err


def test_folder_fails_over_the_bad_fraction(tmp_path):
    folder = make_folder(tmp_path / "imgs", "L", corrupt=2)
    raw = download(DataParams(source="folder", folder=str(folder)), tmp_path / "raw")
    with pytest.raises(
        DataError, match=r"2 of 12 image files are unreadable .*max_bad_fraction = 0.1"
    ):
        read_raw(raw, "folder", max_bad_fraction=0.1)


def test_decompression_bomb_counts_as_a_bad_file(tmp_path, capsys, monkeypatch):
    """An image over PIL's pixel limit (here lowered to 100 px: twice it raises) is a bad file
    under max_bad_fraction, not a traceback."""
    folder = make_folder(tmp_path / "imgs", "L", corrupt=0)
    Image.new("L", (40, 40)).save(folder / "cat" / "huge.png")
    raw = download(DataParams(source="folder", folder=str(folder)), tmp_path / "raw")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 12×10 passes, 40×40 > 2 × 100
    data = read_raw(raw, "folder", max_bad_fraction=0.1)
    assert data.bad_files == ["cat/huge.png"] and len(data.images) == 10
    assert "1 of 11 image files could not be read: cat/huge.png" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"1 of 11 image files are unreadable"):
        read_raw(raw, "folder", max_bad_fraction=0.0)


def test_folder_without_subfolders_is_unlabelled_and_mixed_modes_become_rgb(tmp_path):
    folder = make_folder(tmp_path / "imgs", "L", classes=(), corrupt=0)
    Image.new("RGB", (7, 7), (255, 0, 0)).save(folder / "red.png")
    raw = download(DataParams(source="folder", folder=str(folder)), tmp_path / "raw")
    data = read_raw(raw, "folder")
    assert data.labels is None and data.classes == []
    assert all(a.shape[2] == 3 for a in data.images)


def test_folder_missing_directory_is_named(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        download(DataParams(source="folder", folder=str(tmp_path / "nowhere")), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_raw_folder_of_another_source_is_refused(tmp_path):
    raw = download(DataParams(source="digits"), tmp_path / "raw")
    with pytest.raises(DataError, match="holds 'digits' but data.source is 'mnist'"):
        read_raw(raw, "mnist")


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist", "cifar10"])
def test_download_without_network_fails_fast_and_leaves_nothing(tmp_path, monkeypatch, source):
    """The real torchvision download, pointed at a closed local port, as offline."""
    from torchvision import datasets

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    if source == "cifar10":
        monkeypatch.setattr(datasets.CIFAR10, "url", closed + "cifar-10-python.tar.gz")
    else:
        cls = datasets.MNIST if source == "mnist" else datasets.FashionMNIST
        monkeypatch.setattr(cls, "mirrors", [closed])
    out = tmp_path / "raw"
    with pytest.raises(DataError) as caught:
        download(DataParams(source=source), out)
    message = str(caught.value)
    assert closed in message and "needs internet" in message and "\n" not in message
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
