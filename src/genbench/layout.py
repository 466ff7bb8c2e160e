"""File names the stages agree on: what one stage writes and a later one reads."""

# A trained model's folder, models/<name>/ (model_dir.py writes and reads it).
WEIGHTS, CONFIG, GRID, STATS, CURVES, RUN = (
    "weights.pt",
    "config.json",
    "samples.png",
    "train_stats.json",
    "losses.csv",
    "mlflow_run.json",
)
# An evaluation's figures, figures/<name>/ (evaluation/scoring.py writes them; the report
# shows them). nearest.png: a model's samples closest to a training image, above that image.
SAMPLES_FIGURE, RECONSTRUCTIONS_FIGURE = "samples.png", "reconstructions.png"
NEAREST_FIGURE = "nearest.png"
# torch-fidelity 0.4's Inception weights file (it downloads it into torch hub's checkpoints/).
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
