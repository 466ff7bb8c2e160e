"""Pictures for the report: loss curves drawn with matplotlib, PNGs embedded as data URIs."""

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display: the report is rendered in a DVC stage or CI
import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
from matplotlib.ticker import FuncFormatter  # noqa: E402

# Columns of losses.csv that are not training curves.
NOT_CURVES = {"step", "images_per_second"}


def curves_png(columns: dict[str, list], title: str) -> bytes | None:
    """One small plot per logged quantity (losses.csv's columns, as compare.json carries them)
    against the step; None when nothing was logged."""
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


def _two_and_five(value: float, _) -> str:
    """Minor tick labels of a log axis: only at 2 and 5 times a power of ten."""
    mantissa = f"{value:.0e}"[0]
    return f"{value:g}" if mantissa in "25" else ""


def _draw_curves(ax, panel: dict, axis: str) -> None:
    """One panel: per family the mean line, the interval band and a star at the best point."""
    for index, (family, found) in enumerate(panel["families"].items()):
        xs = found[axis]
        color = f"C{index}"
        ax.plot(xs, found["mean"], marker="o", markersize=3, color=color, label=family)
        if all(v is not None for v in (*found["low"], *found["high"])):
            ax.fill_between(xs, found["low"], found["high"], color=color, alpha=0.2, linewidth=0)
        best = found["best"]
        ax.plot(xs[best], found["mean"][best], marker="*", markersize=12, color=color, zorder=4)
    if panel.get("floor") is not None:
        ax.axhline(panel["floor"], color="#555", linestyle="--", linewidth=1, label="real")
    ax.set_xscale("log")
    # families differ by orders of magnitude (an early DDPM's FID ~1000, a GAN's ~15), and KID
    # may be 0 or below: logarithmic above 1, linear below
    ax.set_yscale("symlog", linthresh=1.0)
    if panel["metric"] == "FID":  # never below 0 (an interval's lower end may be)
        ax.set_ylim(bottom=0)
    if axis == "seconds":  # 20, 50, 100 rather than 2×10¹, 5×10¹, 10²
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    ax.set_xlabel("training FLOPs" if axis == "flops" else "training wall seconds", fontsize=9)
    ax.set_title(panel["metric"], fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, which="both")


def compute_png(panels: list[dict], samples: int) -> bytes | None:
    """Quality against compute: one column per metric, against training FLOPs (top row) and
    wall seconds (bottom row, when every family has them), log x; lines: the mean over seeds,
    bands: its interval, stars: each family's best snapshot, dashed: the real-data floor.

    panels: [{"metric": str, "floor": float | None, "families": {name: {"flops": [...],
    "seconds": [...] | None, "mean": [...], "low": [...], "high": [...], "best": int}}}].
    """
    if not panels:
        return None
    axes_of = ["flops"]
    if all(f["seconds"] for p in panels for f in p["families"].values()):
        axes_of.append("seconds")
    fig, axes = plt.subplots(
        len(axes_of), len(panels), figsize=(4.2 * len(panels), 3.0 * len(axes_of)), squeeze=False
    )
    for row, axis in enumerate(axes_of):
        for ax, panel in zip(axes[row], panels, strict=True):
            _draw_curves(ax, panel, axis)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle(
        f"quality against compute: mean over seeds (line), interval (band), best snapshot (star);"
        f" {samples} samples per point",
        fontsize=10,
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
