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


def seeds_png(panels: list[dict]) -> bytes | None:
    """One panel per metric: every seed's value as a dot per family, the mean with its t
    interval as a bar beside them, and the real-data floor as a dashed line.

    panels: [{"title": str, "floor": float | None, "families": {name: {"values": [...],
    "mean": float, "ci_low": float | None, "ci_high": float | None}}}].
    """
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        names = list(panel["families"])
        for x, name in enumerate(names):
            found = panel["families"][name]
            values = found["values"]
            spread = [x - 0.12 + 0.24 * i / max(1, len(values) - 1) for i in range(len(values))]
            ax.scatter(spread, values, s=14, color="#1f77b4", zorder=3)
            if found.get("ci_low") is not None:
                low, high = found["mean"] - found["ci_low"], found["ci_high"] - found["mean"]
                ax.errorbar(
                    x + 0.3,
                    found["mean"],
                    yerr=[[low], [high]],
                    fmt="o",
                    color="#d62728",
                    markersize=4,
                    capsize=3,
                    zorder=2,
                )
        if panel.get("floor") is not None:
            ax.axhline(panel["floor"], color="#555", linestyle="--", linewidth=1, label="real")
            ax.legend(fontsize=7, loc="best")
        ax.set_xticks(range(len(names)), names, fontsize=9)
        ax.set_xlim(-0.5, len(names) - 0.3)
        ax.set_title(panel["title"], fontsize=10)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("every seed (dots), mean and confidence interval (red)", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
