"""Metrics: tensors in, numbers out (torch-fidelity for FID/KID/IS/PRC, torchmetrics for SSIM)."""
