"""Datasets: sources, preprocessing and the prepared tensor store.

`load_split(data_dir, "train")` returns memory-mapped, checksum-verified uint8 images + labels.
"""

from genbench.data.store import load_split, read_meta

__all__ = ["load_split", "read_meta"]
