"""Readers for what `download` put in the raw folder: digits, IDX (mnist/fashion_mnist), CIFAR-10
pickle batches, and a folder of images. Each returns a RawDataset; nothing is resized here.
"""

import gzip
import json
import os
import pickle
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.Image import DecompressionBombError, DecompressionBombWarning

from genbench.core.errors import DataError
from genbench.core.layout import SOURCE_FILE

# File names inside the raw folder, shared with download.py.
DIGITS_FILE = "digits.npz"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)
FOLDER_DIR = "images"
MNIST_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
# Largest width × height decoded; a larger header makes the file a bad file, undecoded. The
# images of a generative benchmark are small (8×8 to 32×32 here) and the models see at most
# 256×256 (data.image_size), so 4096×4096 (48 MiB as RGB) leaves room for photos while one file
# cannot cost seconds and GBs; PIL's own limit (89 MP warns, 179 MP refuses) is far above it.
MAX_IMAGE_PIXELS = 4096 * 4096


class ImageTooLargeError(ValueError):
    """An image whose header promises more than MAX_IMAGE_PIXELS pixels."""


# What decoding an unreadable file raises: corrupt, not an image (UnidentifiedImageError is an
# OSError), or over a pixel limit (ImageTooLargeError is a ValueError).
BAD_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, DecompressionBombError)


@dataclass
class RawDataset:
    """Images as the source gives them, before resizing and splitting."""

    # (N, H, W, C) uint8 when all images share a shape, else a list of (H, W, C) uint8 arrays.
    images: np.ndarray | list[np.ndarray]
    labels: np.ndarray | None  # (N,) int64, None when the source has no labels
    classes: list[str]
    is_test: np.ndarray | None = None  # (N,) bool for sources with an official split
    bad_files: list[str] = field(default_factory=list)


def read_digits(raw_dir: Path) -> RawDataset:
    """scikit-learn's 8×8 digits, stored by download as values 0..16; scaled here to 0..255."""
    with np.load(raw_dir / DIGITS_FILE) as data:
        images = np.rint(data["images"].astype(np.float64) * (255.0 / 16.0)).astype(np.uint8)
        labels = data["labels"].astype(np.int64)
    return RawDataset(images[..., None], labels, [str(i) for i in range(10)])


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format: magic, big-endian dims, then unsigned bytes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError(f"{path} not found; run `dvc repro download`") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(f"{path}: {len(data)} bytes, expected {expected} for shape {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_dataset(raw_dir: Path, classes: tuple[str, ...]) -> RawDataset:
    """MNIST-format data with its official train/test split."""
    parts = {
        s: (read_idx(raw_dir / im), read_idx(raw_dir / lb)) for s, (im, lb) in IDX_FILES.items()
    }
    for split, (images, labels) in parts.items():
        if images.ndim != 3 or labels.shape != (images.shape[0],):
            raise DataError(
                f"{raw_dir}: {split} images {images.shape} and labels {labels.shape} disagree"
            )
    images = np.concatenate([parts["train"][0], parts["test"][0]])[..., None]
    labels = np.concatenate([parts["train"][1], parts["test"][1]]).astype(np.int64)
    is_test = np.arange(len(labels)) >= len(parts["train"][1])
    return RawDataset(images, labels, list(classes), is_test)


# The only globals a CIFAR-10 python batch names: numpy's array reconstruction (numpy 1 wrote
# numpy.core.multiarray, numpy 2 writes numpy._core.multiarray) and the dtype.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; any other global (os.system,
    builtins.eval, ...) is refused before it is looked up, so a crafted batch runs no code."""

    def __init__(self, handle, path: Path):
        super().__init__(handle, encoding="latin1")  # the official files are Python 2 pickles
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in CIFAR_GLOBALS:
            return CIFAR_GLOBALS[module, name]
        named = f"{module}.{name}".encode("unicode_escape").decode()  # one line, whatever it is
        raise DataError(
            f"{self.path}: refers to {named}, which a CIFAR-10 batch never does; "
            f"delete {self.path.parent.parent} and run `dvc repro download`"
        )


def _unpickle_cifar(path: Path, *keys: str) -> list:
    """The values under keys of one CIFAR-10 pickle (a dict), read by _CifarUnpickler.

    download checked each file's md5 (torchvision) but keeps no archive or checksum, and
    data/raw may come from a DVC remote or a hand-made folder: the restricted unpickler is the
    defence here."""
    try:
        with open(path, "rb") as handle:
            found = _CifarUnpickler(handle, path).load()
        return [found[key] for key in keys]
    except FileNotFoundError:
        raise DataError(f"{path} not found; run `dvc repro download`") from None
    except (pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError) as err:
        raise DataError(
            f"{path}: not a CIFAR-10 batch ({type(err).__name__}: {err}); "
            f"delete {path.parent.parent} and run `dvc repro download`"
        ) from None


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: (N, 32, 32, 3) uint8 images and (N,) labels."""
    data, labels = _unpickle_cifar(path, "data", "labels")
    try:
        data, labels = np.asarray(data, dtype=np.uint8), np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: not a CIFAR-10 batch ({err})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(f"{path}: data {data.shape} / labels {labels.shape} are not CIFAR-10's")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10(raw_dir: Path) -> RawDataset:
    """CIFAR-10 python batches with the official 50k/10k split."""
    root = raw_dir / CIFAR_DIR
    train = [_read_cifar_batch(root / name) for name in CIFAR_TRAIN]
    test = [_read_cifar_batch(root / name) for name in CIFAR_TEST]
    classes = [str(name) for name in _unpickle_cifar(root / "batches.meta", "label_names")[0]]
    images = np.concatenate([b[0] for b in train + test])
    labels = np.concatenate([b[1] for b in train + test])
    is_test = np.arange(len(labels)) >= sum(len(b[1]) for b in train)
    return RawDataset(images, labels, classes, is_test)


def _decode(path: Path) -> tuple[np.ndarray, bool]:
    """Decode one image to (H, W, C) uint8; returns (array, is_gray). Raises ImageTooLargeError,
    before decoding anything, when the header promises more than MAX_IMAGE_PIXELS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecompressionBombWarning)  # MAX_IMAGE_PIXELS is lower
        image = Image.open(path)  # lazy: reads the header only
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageTooLargeError(
                f"{width}×{height} pixels, over MAX_IMAGE_PIXELS = 4096×4096; shrink it"
            )
        image.load()
        gray = image.mode in GRAY_MODES
        converted = image.convert("L" if gray else "RGB")
    array = np.array(converted, dtype=np.uint8)  # a writable copy
    return (array[..., None] if gray else array), gray


def folder_files(root: Path, allow_links: bool = False) -> list[Path]:
    """Every file under root, sorted, walked without following a link.

    root itself may be a link (data.folder pointing elsewhere is the user's choice). A link
    inside it, to a file or a folder, hidden or not, is refused with DataError: following it
    would bring anything on this machine into data/raw, the DVC cache and its remote. So is a
    pipe, socket or device. allow_links is for data/raw, where download never puts a link and
    one is DVC's own checkout of its cache (cache.type symlink); links are then listed as files.
    """
    files = []
    for folder, dirnames, filenames in os.walk(root):  # followlinks=False: never enters a link
        paths = [Path(folder, name) for name in filenames]
        for path in [Path(folder, name) for name in dirnames] + paths:
            if path.is_symlink() and not allow_links:
                raise DataError(
                    f"{root}: {path.relative_to(root)} is a symbolic link; copy what it points "
                    "to into the folder instead of linking it"
                )
        for path in paths:
            if not path.is_symlink() and not path.is_file():
                raise DataError(
                    f"{root}: {path.relative_to(root)} is not a regular file (a pipe, socket or "
                    "device); move it out of the folder"
                )
        files += paths
    return sorted(files)


def image_files(root: Path, allow_links: bool = False) -> tuple[list[Path], list[str]]:
    """The image files under root (hidden ones skipped) and the class names (subfolders; []
    when the images sit at the top). Raises DataError when there are none, or both layouts,
    or (folder_files) for a link inside root unless allow_links."""
    if not root.is_dir():
        raise DataError(f"{root} is not a directory; set data.folder to a folder of images")
    files = [
        p
        for p in folder_files(root, allow_links)
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()  # with allow_links: a dangling link is no image
    ]
    if not files:
        raise DataError(f"{root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    nested = {p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}
    loose = [p.name for p in files if p.parent == root]
    if nested and loose:
        raise DataError(
            f"{root}: images both in class subfolders and at the top ({loose[0]}, ...); "
            "put every image in a class subfolder, or none"
        )
    return files, sorted(nested)


def decoded_images(files: list[Path]) -> Iterator[tuple[Path, tuple | None]]:
    """(path, (array, is_gray)) per file, or (path, None) for a file that cannot be decoded:
    corrupt, not an image, over MAX_IMAGE_PIXELS (checked on the header, before decoding) or
    over PIL's decompression-bomb pixel limit."""
    for path in files:
        try:
            yield path, _decode(path)
        except BAD_IMAGE_ERRORS:
            yield path, None


def _why_unreadable(path: Path) -> str:
    """Why path cannot be decoded, in one line (asked again for the first bad file only)."""
    try:
        _decode(path)
    except BAD_IMAGE_ERRORS as err:
        return " ".join(str(err).split()) or type(err).__name__
    return "readable now"


def check_bad_files(
    root: Path, bad: list[str], total: int, max_bad_fraction: float, warn: bool = True
) -> None:
    """Warn about unreadable files (unless warn is False); fail when their share exceeds
    max_bad_fraction. Both messages give the first bad file's reason."""
    failing = len(bad) > max_bad_fraction * total
    if not bad or not (warn or failing):
        return
    first = f"{bad[0]}: {_why_unreadable(root / bad[0])}"
    if warn:
        shown = ", ".join(bad[:10]) + (", ..." if len(bad) > 10 else "")
        print(
            f"warning: {len(bad)} of {total} image files could not be read: {shown} "
            f"(first: {first})",
            file=sys.stderr,
        )
    if failing:
        raise DataError(
            f"{root}: {len(bad)} of {total} image files are unreadable "
            f"({len(bad) / total:.1%} > data.max_bad_fraction = {max_bad_fraction}); "
            f"fix or remove them (first: {first}) or raise data.max_bad_fraction"
        )


def read_folder(raw_dir: Path, max_bad_fraction: float) -> RawDataset:
    """Images under raw_dir/images; class subfolders (one level) give labels.

    Undecodable files are collected by name; the read fails when their share of all image files
    exceeds max_bad_fraction. Mixed gray and colour images become 3-channel.
    """
    root = raw_dir / FOLDER_DIR
    files, classes = image_files(root, allow_links=True)  # download copied no link; see there
    decoded, labels, bad = [], [], []
    for path, image in decoded_images(files):
        if image is None:
            bad.append(str(path.relative_to(root)))
            continue
        decoded.append(image)
        if classes:
            labels.append(classes.index(path.relative_to(root).parts[0]))
    check_bad_files(root, bad, len(files), max_bad_fraction)
    any_color = any(not gray for _, gray in decoded)
    images = [np.repeat(a, 3, axis=2) if any_color and a.shape[2] == 1 else a for a, _ in decoded]
    return RawDataset(
        images, np.asarray(labels, np.int64) if classes else None, classes, bad_files=bad
    )


def read_raw(raw_dir: str | Path, source: str, max_bad_fraction: float = 0.0) -> RawDataset:
    """Read the raw folder that `download` wrote for `source`."""
    raw_dir = Path(raw_dir)
    _check_raw_source(raw_dir, source)
    if source == "digits":
        return read_digits(raw_dir)
    if source == "mnist":
        return read_idx_dataset(raw_dir, MNIST_CLASSES)
    if source == "fashion_mnist":
        return read_idx_dataset(raw_dir, FASHION_CLASSES)
    if source == "cifar10":
        return read_cifar10(raw_dir)
    if source == "folder":
        return read_folder(raw_dir, max_bad_fraction)
    raise DataError(f"unknown data.source {source!r}")


def _check_raw_source(raw_dir: Path, source: str) -> None:
    """Refuse a raw folder that `download` filled for another source, or never filled."""
    try:
        found = json.loads((raw_dir / SOURCE_FILE).read_text())["source"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        raise DataError(f"{raw_dir} holds no downloaded data; run `dvc repro download`") from None
    if found != source:
        raise DataError(
            f"{raw_dir} holds {found!r} but data.source is {source!r}; run `dvc repro download`"
        )
