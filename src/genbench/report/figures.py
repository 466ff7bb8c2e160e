"""Pictures for the report: loss curves drawn with matplotlib, PNGs embedded as data URIs."""

import base64
import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the report is rendered in a DVC stage or CI
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)

# Columns of losses.csv that are not training curves.
NOT_CURVES = {"step", "images_per_second"}


def read_curves(path: Path) -> dict[str, list[float]]:
    """losses.csv -> {"step": [...], "loss": [...], ...}; blank cells are skipped per column."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(float(value) if value not in ("", None) else None)
    return columns


def curves_png(path: Path, title: str) -> bytes | None:
    """One small plot per logged quantity against the step; None when nothing was logged."""
    columns = read_curves(path)
    names = [name for name in columns if name not in NOT_CURVES]
    if not names or "step" not in columns:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        points = [
            (s, v) for s, v in zip(columns["step"], columns[name], strict=True) if v is not None
        ]
        ax.plot([s for s, _ in points], [v for _, v in points], linewidth=1.2)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """A PNG as a `data:` URI, so the HTML opens from disk with no other file and no network."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
