"""The one list of metrics: per metric its key, label, where it sits in a metrics file, which
direction is better, the scale its seeds are compared on, the test, its digits, and whether it
enters the verdict. compare, the report, the flow summary and the sweep read it; nothing else
defines a direction or a scale.

Scales (compare/stats.py applies them; docs/statistics.md has the calibration behind them):
- `log`: ratio-scale metrics whose seed-to-seed spread grows with their level (FID, IS): the
  seeds are compared on log values, and an effect is a ratio.
- `raw`: bounded proportions and similar (precision, recall, coverage, density): compared as
  they are, an effect is a difference.
- `asinh`: KID, an unbiased estimate that can be zero or negative: asinh(KID / c), with c the
  median of the runs' own KID standard errors (`kid_std`). It is linear within the estimator's
  noise and logarithmic far above it, so it treats 0.6 against 72 as the ratio it is without
  breaking on a negative value.
"""

from dataclasses import dataclass

LOWER, HIGHER, NEAR_REAL = "lower", "higher", "near_real"  # what "better" means for a metric
NONE = "none"  # a cost or a diagnostic: never better or worse
LOG, RAW, ASINH = "log", "raw", "asinh"
# Where scores sit in a metrics file, whatever the feature extractor: the primary space's under
# `scores`, each further space's under `spaces.<space>`; the top-level field `extractor` names
# the primary space (memorisation and val are scored in it too).
SCORES, SPACES, EXTRACTOR = "scores", "spaces", "extractor"
WELCH = "Welch's t-test"  # the test between two families, on the metric's scale


@dataclass(frozen=True)
class Metric:
    """One metric of a metrics file and how it is judged."""

    key: str  # short name: report column, CLI, sweep (`fid`)
    label: str
    group: str  # metrics group: SCORES, "ssim", "memorisation" or "cost"
    metric: str  # its leaf name in the group (`kid_mean`)
    better: str  # LOWER, HIGHER, NEAR_REAL or NONE
    scale: str = RAW  # LOG, RAW or ASINH: how seeds are compared (module docstring)
    digits: int = 3
    unit: str = ""
    verdict: bool = False  # ranked by the compare stage, in the headline
    why_not: str = ""  # for a quality metric left out of the verdict: the reason, in the report

    @property
    def higher_is_better(self) -> bool | None:
        """torchmetrics' name for the direction: True, False, or None (near real, or a cost)."""
        return {HIGHER: True, LOWER: False}.get(self.better)

    @property
    def quality(self) -> bool:
        """A sample-quality metric: the real-data floor has a value for it."""
        return self.group != "cost"

    def key_in(self, space: str | None = None) -> str:
        """Its dotted key in a metrics file (and under compare.json's families.<family>):
        `scores.fid` in the primary space, `spaces.<space>.fid` in a further one."""
        return f"{scores_group(space) if self.group == SCORES else self.group}.{self.metric}"


def scores_group(space: str | None = None) -> str:
    """The group of a feature space's scores: `scores` (primary, None) or `spaces.<space>`."""
    return SCORES if space is None else f"{SPACES}.{space}"


DIVERSITY_NOTE = (
    "a diagnostic, not a verdict metric: images unlike each other score like real digits "
    "whether they are digits or noise, so a model far from the data could win it; far above "
    "the real images' figure means mode collapse"
)

METRICS = (
    Metric("fid", "FID", SCORES, "fid", LOWER, LOG, 2, verdict=True),
    Metric("kid", "KID", SCORES, "kid_mean", LOWER, ASINH, 3, verdict=True),
    Metric("is", "IS", SCORES, "is_mean", HIGHER, LOG, 2, verdict=True),
    Metric("precision", "precision", SCORES, "precision", HIGHER, verdict=True),
    Metric("recall", "recall", SCORES, "recall", HIGHER, verdict=True),
    Metric("density", "density", SCORES, "density", HIGHER, verdict=True),
    Metric("coverage", "coverage", SCORES, "coverage", HIGHER, verdict=True),
    Metric("reconstruction", "recon. SSIM", "ssim", "reconstruction", HIGHER),
    Metric("diversity", "diversity SSIM", "ssim", "diversity", NEAR_REAL, why_not=DIVERSITY_NOTE),
    Metric("copy_rate", "copy rate", "memorisation", "copy_rate", LOWER),
    Metric("parameters", "parameters", "cost", "parameters", NONE, digits=0),
    Metric("train_seconds", "train time", "cost", "train_seconds", NONE, digits=1, unit=" s"),
    Metric("sampling", "sampling ms/img", "cost", "sampling_ms_per_image", NONE),
)
VERDICT_METRICS = tuple(m for m in METRICS if m.verdict)
# Along the budget every point is scored on few samples (evaluate.curve_samples), where FID's
# bias is large and differs between models (Chong & Forsyth 2020); KID is unbiased at any count,
# so the verdict along the budget uses KID alone. FID is still drawn.
CURVE_VERDICT_METRIC = "kid_mean"
CURVE_METRICS = ("fid", "kid_mean")
# Measured durations: they move with the machine's load, so a change is never better or worse.
TIMINGS = frozenset({"sampling_ms_per_image", "train_seconds", "train_images_per_second"})


def by_leaf(leaf: str) -> Metric | None:
    """The metric whose leaf name in a metrics file is `leaf` (`kid_mean`), or None."""
    return next((m for m in METRICS if m.metric == leaf), None)


def by_key(key: str) -> Metric:
    """The metric named `key` (`fid`), by its short name or its leaf name."""
    found = next((m for m in METRICS if key in (m.key, m.metric)), None)
    if found is None:
        raise KeyError(f"no metric {key!r}; known: {', '.join(m.key for m in METRICS)}")
    return found


def better_direction(leaf: str) -> str:
    """LOWER, HIGHER, NEAR_REAL or NONE for a metrics file's leaf name (NONE when unknown)."""
    found = by_leaf(leaf)
    return found.better if found else NONE
