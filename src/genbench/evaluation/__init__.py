"""One model's (or the real data's) evaluation: feature extractor, torch-fidelity metrics, SSIM,
cost, figures and the protocol card (run.py: the `evaluate@<name>` / `evaluate_real` stage)."""
