"""Hostile inputs stay out: links out of data.folder, huge image headers, CIFAR pickles that run
code. Each is refused (or counted as a bad file) with one line, before anything is read."""

import os
import pickle
import struct
import subprocess
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from genbench.config.data import DataParams
from genbench.core.errors import DataError
from genbench.data import sources
from genbench.data.download import download
from genbench.data.sources import check_bad_files, decoded_images, image_files, read_raw
from tests.unit.test_sources import make_folder, mark_source


def link_file_outside(folder, outside):
    (outside / "secret.png").write_bytes(b"not yours")
    os.symlink(outside / "secret.png", folder / "cat" / "leak.png")
    return "cat/leak.png"


def link_directory(folder, outside):
    (outside / "more").mkdir()
    Image.new("L", (4, 4)).save(outside / "more" / "0.png")
    os.symlink(outside / "more", folder / "more")
    return "more"


def link_loop(folder, outside):
    os.symlink(folder / "dog" / "loop.png", folder / "dog" / "loop.png")
    return "dog/loop.png"


def link_hidden(folder, outside):
    """Hidden files are skipped by the reader, but download copies them: refused too."""
    os.symlink("/etc/passwd", folder / ".passwd")
    return ".passwd"


LINKS = [link_file_outside, link_directory, link_loop, link_hidden]


@pytest.mark.parametrize("make_link", LINKS, ids=lambda f: f.__name__)
def test_links_in_the_folder_are_refused_and_nothing_is_copied(tmp_path, make_link):
    folder = make_folder(tmp_path / "imgs", "L", corrupt=0)
    (tmp_path / "outside").mkdir()
    name = make_link(folder, tmp_path / "outside")
    out = tmp_path / "raw"
    for refuse in (
        lambda: image_files(folder),  # what `validate` (preflight) and the reader walk
        lambda: download(DataParams(source="folder", folder=str(folder)), out),
    ):
        with pytest.raises(DataError) as caught:
            refuse()
        message = str(caught.value)
        assert f": {name} is a symbolic link; copy what it points to into the folder" in message
        assert "\n" not in message
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "outside"]


def test_the_folder_itself_may_be_a_link(tmp_path):
    folder = make_folder(tmp_path / "imgs", "L", corrupt=0)
    os.symlink(folder, tmp_path / "alias")
    files, classes = image_files(tmp_path / "alias")
    assert len(files) == 10 and classes == ["cat", "dog"]
    raw = download(DataParams(source="folder", folder=str(tmp_path / "alias")), tmp_path / "raw")
    assert len(read_raw(raw, "folder").images) == 10


def test_a_pipe_in_the_folder_is_refused(tmp_path):
    folder = make_folder(tmp_path / "imgs", "L", corrupt=0)
    os.mkfifo(folder / "cat" / "pipe.png")
    with pytest.raises(DataError, match=r"cat/pipe.png is not a regular file"):
        download(DataParams(source="folder", folder=str(folder)), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_dvc_symlink_checkouts_of_the_raw_folder_still_read(tmp_path):
    """With DVC's cache.type symlink, data/raw/images/* are links into the cache."""
    raw = download(
        DataParams(source="folder", folder=str(make_folder(tmp_path / "imgs", "L", corrupt=0))),
        tmp_path / "raw",
    )
    cache = tmp_path / "cache"
    cache.mkdir()
    for i, path in enumerate(sorted((raw / sources.FOLDER_DIR).rglob("*.png"))):
        path.rename(cache / str(i))
        os.symlink(cache / str(i), path)
    assert len(read_raw(raw, "folder").images) == 10


def png_claiming(path, width, height):
    """A 1×1 PNG whose IHDR says width × height (CRC fixed): PIL reports that .size at once."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts at byte 16
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # over type + 13 data bytes
    path.write_bytes(bytes(data))


def test_a_huge_header_is_a_bad_file_and_never_decoded(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path / "imgs", "L", corrupt=0)
    png_claiming(folder / "cat" / "huge.png", 12000, 12000)
    with (
        pytest.warns(Image.DecompressionBombWarning),
        Image.open(folder / "cat" / "huge.png") as im,
    ):
        assert im.size == (12000, 12000)  # PIL only warns: its refusal limit is 2 × 89 MP
    decoded_sizes = []
    real_load = ImageFile.ImageFile.load

    def recording_load(image):
        decoded_sizes.append(image.size)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    files, _ = image_files(folder)
    bad = [str(p.relative_to(folder)) for p, image in decoded_images(files) if image is None]
    assert bad == ["cat/huge.png"]  # what `validate` computes
    assert set(decoded_sizes) == {(12, 10)}  # the 10 real images only
    reason = "cat/huge.png: 12000×12000 pixels, over MAX_IMAGE_PIXELS = 4096×4096"
    with pytest.raises(DataError, match=reason):
        check_bad_files(folder, bad, len(files), 0.0, warn=False)

    raw = download(DataParams(source="folder", folder=str(folder)), tmp_path / "raw")
    data = read_raw(raw, "folder", max_bad_fraction=0.1)
    assert data.bad_files == ["cat/huge.png"] and len(data.images) == 10
    assert (
        f"could not be read: cat/huge.png (first: {reason}; shrink it)" in capsys.readouterr().err
    )
    assert set(decoded_sizes) == {(12, 10)}


class Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 str (BINSTRING), as the official CIFAR-10 batches were written:
    read with encoding="latin1", b"data" comes back as "data"."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        size = len(obj)
        if size < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([size]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", size) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_py2_pickle(path, obj):
    with open(path, "wb") as handle:
        Py2Pickler(handle, protocol=2).dump(obj)


def write_cifar(raw, payload=None, into="data_batch_1"):
    """Official-looking CIFAR-10 batches (3 images each) and meta; `payload` replaces `into`."""
    root = raw / sources.CIFAR_DIR
    root.mkdir(parents=True)
    rng = np.random.default_rng(3)
    expected = {}
    for name in (*sources.CIFAR_TRAIN, *sources.CIFAR_TEST):
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, 3).tolist(),
            b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
            b"filenames": [b"a.png", b"b.png", b"c.png"],
        }
        write_py2_pickle(root / name, batch)
        expected[name] = batch
    names = [b"airplane", b"automobile"] + [f"c{i}".encode() for i in range(8)]
    write_py2_pickle(root / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    if payload is not None:
        (root / into).write_bytes(payload)
    mark_source(raw, "cifar10")
    return expected


def test_an_official_style_cifar_batch_still_reads(tmp_path):
    expected = write_cifar(tmp_path)
    pickled = (tmp_path / sources.CIFAR_DIR / "data_batch_1").read_bytes()
    assert pickled.startswith(b"\x80\x02") and b"numpy" in pickled and b"_codecs" not in pickled
    data = read_raw(tmp_path, "cifar10")
    assert data.images.shape == (18, 32, 32, 3) and data.is_test.sum() == 3
    first = expected["data_batch_1"]
    np.testing.assert_array_equal(data.images[0, 0, 0], first[b"data"][0, [0, 1024, 2048]])
    assert data.labels[:3].tolist() == first[b"labels"]
    assert data.classes[:2] == ["airplane", "automobile"]


class Runs:
    """Pickles as a call of `function(*args)`: what a crafted batch would do on load."""

    def __init__(self, function, *args):
        self.reduced = (function, args)

    def __reduce__(self):
        return self.reduced


# (id, what the pickle calls, its arguments given the marker file a success would create)
HOSTILE = [
    ("os.system", os.system, lambda marker: (f"touch {marker}",)),
    ("subprocess", subprocess.call, lambda marker: (["touch", str(marker)],)),
    ("eval", eval, lambda marker: (f"open({str(marker)!r}, 'w')",)),
    ("open", open, lambda marker: (str(marker), "w")),
]


@pytest.mark.parametrize("into", ["data_batch_1", "batches.meta"])
@pytest.mark.parametrize(
    ("function", "arguments"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_a_cifar_pickle_that_runs_code_is_refused(tmp_path, function, arguments, into):
    marker = tmp_path / "pwned"
    payload = {"data": Runs(function, *arguments(marker)), "labels": [0]}
    write_cifar(tmp_path / "raw", pickle.dumps(payload, protocol=2), into)
    with pytest.raises(DataError) as caught:
        read_raw(tmp_path / "raw", "cifar10")
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "raw" / sources.CIFAR_DIR / into))
    # Named as the pickle does: protocol 2 writes builtins as __builtin__, os.system as posix.
    assert f".{function.__name__}, which a CIFAR-10 batch never does" in message
    assert message.endswith("and run `dvc repro download`")
    assert "\n" not in message
    assert not marker.exists()


def test_a_cifar_batch_that_is_no_pickle_is_one_line(tmp_path):
    write_cifar(tmp_path, b"\x80\x02garbage")
    with pytest.raises(DataError, match=r"data_batch_1: not a CIFAR-10 batch") as caught:
        read_raw(tmp_path, "cifar10")
    assert "\n" not in str(caught.value)
