"""Metrics: tensors in, numbers out (torch-fidelity for FID/KID/IS, prdc for precision/recall/
density/coverage, nearest neighbours for memorisation, torchmetrics for SSIM)."""
