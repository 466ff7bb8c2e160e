"""Preprocess output (shape, split, meta, grid) and the checksum-verified memory-mapped loader."""

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from genbench.config.data import DataParams
from genbench.core.errors import DataError
from genbench.core.store import load_split, read_meta
from genbench.data.download import download
from genbench.data.preprocess import preprocess, resize_square


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    params = DataParams(source="digits", image_size=16, test_fraction=0.25)
    download(params, root / "raw")
    meta = preprocess(root / "raw", root / "prepared", params, seed=7)
    return root, params, meta


def test_digits_prepared_shape_split_and_meta(prepared):
    root, _, meta = prepared
    train, train_labels = load_split(root / "prepared", "train")
    val, val_labels = load_split(root / "prepared", "val")
    test, test_labels = load_split(root / "prepared", "test")
    assert train.dtype == torch.uint8 and tuple(train.shape[1:]) == (1, 16, 16)
    assert len(train) + len(val) + len(test) == 1797
    assert len(test) == math.ceil(0.25 * 1797)
    assert len(val) == math.ceil(0.1 * (1797 - len(test)))  # val comes out of the train share
    assert meta["counts"] == {"train": len(train), "val": len(val), "test": len(test)}
    # stratified: every class is in every split in about the same share
    assert torch.bincount(test_labels).min() >= 40
    assert torch.bincount(val_labels).min() >= 10
    assert set(train_labels.tolist()) == set(range(10))
    assert read_meta(root / "prepared")["sha256"] == meta["sha256"]
    assert meta["split"] == "random" and meta["channels"] == 1 and meta["labelled"]
    grid = Image.open(root / "prepared" / "samples.png")
    assert grid.width >= 256


def test_split_is_deterministic_from_the_seed(prepared, tmp_path):
    root, params, meta = prepared
    again = preprocess(root / "raw", tmp_path / "again", params, seed=7)
    assert again["sha256"] == meta["sha256"]
    other = preprocess(root / "raw", tmp_path / "other", params, seed=8)
    assert other["sha256"]["test_labels.npy"] != meta["sha256"]["test_labels.npy"]


def test_loader_is_memory_mapped(prepared):
    """The arrays are mapped from their files (Linux: listed in /proc/self/maps), not read in."""
    path = str((prepared[0] / "prepared" / "train_images.npy").resolve())
    images, _ = load_split(prepared[0] / "prepared", "train")
    maps = Path("/proc/self/maps").read_text()
    assert path in maps
    images[0, 0, 0, 0] = 1 - images[0, 0, 0, 0]  # copy-on-write: the file itself never changes
    load_split(prepared[0] / "prepared", "train")  # still matches its sha256
    del images


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_loader_refuses_a_damaged_array(prepared, tmp_path, damage):
    import shutil

    copy = tmp_path / "prepared"
    shutil.copytree(prepared[0] / "prepared", copy)
    path = copy / "test_images.npy"
    data = bytearray(path.read_bytes())
    path.write_bytes(
        bytes(data[:-100]) if damage == "truncate" else bytes(data[:-1] + bytes([data[-1] ^ 1]))
    )
    with pytest.raises(DataError, match="test_images.npy: sha256 .* does not match"):
        load_split(copy, "test")
    load_split(copy, "train")  # the untouched split still loads


def test_loader_errors_name_the_missing_piece(tmp_path):
    with pytest.raises(DataError, match="meta.json not found"):
        load_split(tmp_path, "train")
    (tmp_path / "meta.json").write_text(json.dumps({"sha256": {}, "labelled": False}))
    with pytest.raises(DataError, match="no sha256 for train_images.npy"):
        load_split(tmp_path, "train")


def test_resize_square_crops_the_centre_and_keeps_constants():
    flat = torch.full((2, 3, 20, 40), 200, dtype=torch.uint8)
    out = resize_square(flat, 10)
    assert out.shape == (2, 3, 10, 10) and out.dtype == torch.uint8
    assert torch.all(out == 200)
    wide = torch.zeros(1, 1, 8, 24, dtype=torch.uint8)
    wide[..., 8:16] = 255  # the centre third is white: after the crop everything is white
    assert torch.all(resize_square(wide, 8) == 255)


def test_preprocess_failure_leaves_no_output(tmp_path):
    params = DataParams(source="digits")
    with pytest.raises(DataError, match="run `dvc repro download`"):
        preprocess(tmp_path / "raw", tmp_path / "prepared", params, seed=0)
    assert not (tmp_path / "prepared").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_rgb_folder_preprocess_keeps_three_channels(tmp_path):
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    for i in range(6):
        Image.new("RGB", (30, 20), (i * 40, 0, 0)).save(folder / f"{i}.png")
    params = DataParams(
        source="folder", folder=str(tmp_path / "imgs"), image_size=8, test_fraction=0.5
    )
    download(params, tmp_path / "raw")
    meta = preprocess(tmp_path / "raw", tmp_path / "out", params, seed=0)
    assert meta["shape"]["train"] == [2, 3, 8, 8] and meta["shape"]["val"] == [1, 3, 8, 8]
    assert meta["classes"] == ["a"]


def test_atomic_dir_replaces_keeps_on_failure_and_is_readable(tmp_path):
    import os
    import stat

    from genbench.core.files import atomic_dir

    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("the stage failed midway")
    assert (out / "a.txt").read_text() == "first"  # the old output, untouched
    with atomic_dir(out) as tmp:
        (tmp / "b.txt").write_text("second")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp or old folder left
    assert [p.name for p in out.iterdir()] == ["b.txt"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700


def test_train_val_test_indices_are_disjoint_and_cover_everything():
    """Val is carved from the training share: no image is in two splits, none is lost."""
    import numpy as np

    from genbench.data.preprocess import split_indices
    from genbench.data.sources import RawDataset

    labels = np.repeat(np.arange(5), 40)
    raw = RawDataset(np.zeros((200, 2, 2, 1), np.uint8), labels, [str(i) for i in range(5)])
    train, val, test = split_indices(raw, DataParams(test_fraction=0.2, val_fraction=0.25), 3)
    assert (len(train), len(val), len(test)) == (120, 40, 40)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(200))
    assert np.bincount(labels[val]).tolist() == [8] * 5  # stratified
