"""Pixels: the conversions between stored uint8 images and model tensors, and PNG grids."""

from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (what every network takes)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> [0, 255] uint8, on the CPU (what is stored, shown and scored)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def grid_image(images: torch.Tensor, nrow: int = 8, min_width: int = 256) -> Image.Image:
    """Tile uint8 (N, C, H, W) images into one PIL image, upscaled (nearest) to >= min_width px."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    grid = make_grid(images, nrow=nrow, padding=1, pad_value=128)  # (C', H', W') uint8
    scale = max(1, -(-min_width // grid.shape[-1]))
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=-1).repeat_interleave(scale, dim=-2)
    return Image.fromarray(grid.permute(1, 2, 0).contiguous().numpy())


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> None:
    """Write a grid of uint8 (N, C, H, W) images to a PNG file."""
    grid_image(images, nrow=nrow).save(path, format="PNG")
