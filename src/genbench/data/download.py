"""The `download` stage's work: bring a source's files into a raw folder, verified, atomically.

mnist, fashion_mnist and cifar10 are fetched by torchvision, which checks each file's md5;
offline the fetch fails at once and no partial folder is left behind.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from torchvision import datasets

from genbench.config.data import DataParams
from genbench.core.errors import DataError
from genbench.core.files import atomic_dir
from genbench.core.layout import SOURCE_FILE
from genbench.data.sources import (
    CIFAR_DIR,
    DIGITS_FILE,
    FOLDER_DIR,
    IDX_FILES,
    folder_files,
)

TORCHVISION = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}


def _first_url(source: str) -> str:
    """The first URL torchvision tries for a source, for the error message."""
    if source == "cifar10":
        return datasets.CIFAR10.url
    cls = TORCHVISION[source]
    return f"{cls.mirrors[0]}{cls.resources[0][0]}"


def _fetch_torchvision(source: str, tmp: Path) -> None:
    """Download with torchvision (md5-checked) into tmp, then keep only the files we read."""
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            if source == "cifar10":
                datasets.CIFAR10(str(tmp / "tv"), train=True, download=True)
            else:
                TORCHVISION[source](str(tmp / "tv"), train=True, download=True)
    except Exception as err:  # torchvision raises RuntimeError/URLError/OSError by mirror
        lines = [ln.strip() for ln in f"{err}\n{log.getvalue()}".splitlines() if "rror" in ln]
        reason = lines[-1] if lines else type(err).__name__
        raise DataError(
            f"could not download {source} from {_first_url(source)} ({reason}); this machine needs "
            "internet access for it, or use data.source: digits (bundled) or folder"
        ) from None
    if source == "cifar10":
        shutil.move(tmp / "tv" / CIFAR_DIR, tmp / CIFAR_DIR)
    else:
        raw = tmp / "tv" / TORCHVISION[source].__name__ / "raw"
        for name in (n for pair in IDX_FILES.values() for n in pair):
            shutil.move(raw / name, tmp / name)
    shutil.rmtree(tmp / "tv")


def _copy_folder(folder: Path, tmp: Path) -> None:
    """Snapshot a user's image folder so DVC versions exactly what was trained on.

    data.folder may itself be a link (resolved once, here); a link inside it is refused
    (folder_files), so nothing from outside the folder reaches data/raw, the cache or a remote.
    """
    if not folder.is_dir():
        raise DataError(
            f"data.folder = {str(folder)!r} is not a directory; set it to a folder of images"
        )
    folder = folder.resolve()
    folder_files(folder)  # DataError on a link, pipe or device inside
    # symlinks=True: a link made after that check is copied as a link, never followed.
    shutil.copytree(folder, tmp / FOLDER_DIR, symlinks=True)


def download(params: DataParams, out: str | Path) -> Path:
    """Fill `out` with the raw files of params.source plus source.json; returns out."""
    out = Path(out)
    with atomic_dir(out) as tmp:
        if params.source == "digits":
            digits = load_digits()  # bundled with scikit-learn: works offline
            np.savez_compressed(
                tmp / DIGITS_FILE,
                images=digits.images.astype(np.uint8),  # (1797, 8, 8), values 0..16
                labels=digits.target.astype(np.int64),
            )
        elif params.source == "folder":
            _copy_folder(Path(params.folder), tmp)
        else:
            _fetch_torchvision(params.source, tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps({"source": params.source}) + "\n")
    return out
