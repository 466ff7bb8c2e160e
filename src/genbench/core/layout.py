"""File names the stages agree on: what one stage writes and a later one reads."""


def run_name(family: str, seed: int) -> str:
    """One trained model's name: its stages (train@gan-0), folders and files (gan-0.json).
    dvc.yaml spells the same rule as ${item.model}-${item.seed}."""
    return f"{family}-{seed}"


# data/raw/ (download's): which source filled it. data/prepared/ (preprocess's): the splits'
# description and checksums (core/store.py reads it) and a grid of train images.
SOURCE_FILE, META, DATA_GRID = "source.json", "meta.json", "samples.png"
# models/evaluator/ (train_evaluator's): the offline evaluator's weights and what it is.
EVALUATOR_WEIGHTS, EVALUATOR_INFO = "weights.pt", "evaluator.json"
# reports/images/ (the report's): the figures of quality against compute and of every seed.
COMPUTE_FIGURE, SEEDS_FIGURE = "compute.png", "seeds.png"

# The project's output folders as dvc.yaml names them. Stages get their paths as arguments; the
# CLI, `genbench diff` and the flow's summary start from these defaults at the project root.
METRICS_DIR, MODELS_DIR, FIGURES_DIR, REPORTS_DIR = "metrics", "models", "figures", "reports"
# The report stage's files in reports/: the page, its Markdown twin and their images.
HTML, MARKDOWN, IMAGES = "index.html", "report.md", "images"

# Under metrics/: each trained model's metrics and protocol card (runs/<name>.json and
# runs/<name>.protocol.json, the evaluate stage's), the real-data floor's (real.json and
# real.protocol.json, evaluate_real's), the comparison over seeds (compare.json, compare's).
REAL = "real"  # the real-data floor's name in metrics/ and figures/
RUNS = "runs"
COMPARE = "compare.json"
CARD_SUFFIX = ".protocol.json"


def metrics_file(name: str) -> str:
    """Where a result's metrics live under metrics/: runs/<family>-<seed>.json or real.json."""
    return f"{name}.json" if name == REAL else f"{RUNS}/{name}.json"


def card_file(name: str) -> str:
    """Where a result's protocol card lives under metrics/, beside its metrics."""
    return metrics_file(name).removesuffix(".json") + CARD_SUFFIX


def snapshot_file(step: int) -> str:
    """The weights file of the snapshot at `step` in a model's snapshots/ folder."""
    return f"step-{step:07d}.safetensors"


# A trained model's folder, models/<name>/ (model_dir.py writes and reads it).
WEIGHTS, CONFIG, GRID, STATS, CURVES, RUN = (
    "weights.safetensors",
    "config.json",
    "samples.png",
    "train_stats.json",
    "losses.csv",
    "mlflow_run.json",
)
# Snapshots of the generating network at fractions of the budget: a folder in the model's folder
# (and in the checkpoints' work folder while training), with an index of what each one is.
SNAPSHOTS, SNAPSHOT_INDEX = "snapshots", "snapshots.json"
# An evaluation's figures, figures/<name>/ (evaluation/scoring.py writes them; the report
# shows them). nearest.png: a model's samples closest to a training image, above that image.
SAMPLES_FIGURE, RECONSTRUCTIONS_FIGURE = "samples.png", "reconstructions.png"
NEAREST_FIGURE = "nearest.png"
# torch-fidelity 0.4's Inception weights file (it downloads it into torch hub's checkpoints/).
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"

# The protocol card's keys that must match for two evaluations' quality numbers to be compared
# at all: the extractor, reference set, sample count, sampler, and how KID,
# precision/recall/density/coverage and the real-data floor were computed (their rules changed
# once already). Evaluation writes their digest into the metrics file; the report compares it.
COMPARABLE = (
    "feature_extractor",
    "reference",
    "num_samples",
    "sampler",
    "protocol",
    "kid",
    "prdc",
    "real_floor",
)
