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
# shows them).
SAMPLES_FIGURE, RECONSTRUCTIONS_FIGURE = "samples.png", "reconstructions.png"
