"""Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training", section 3): the discriminator only ever sees augmented images,
real and fake alike, and the generator's gradient flows back through the same augmentation.
On small datasets this keeps the discriminator from memorising the training images.

Pure tensor functions of images (B, C, H, W) in [-1, 1]; each image draws its own parameters
from torch's default random stream on the images' device (seeded and checkpointed by training).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812


def _uniform(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """One factor per image, (B, 1, 1, 1), uniform in [low, high)."""
    draw = torch.rand(len(images), 1, 1, 1, device=images.device, dtype=images.dtype)
    return low + (high - low) * draw


def color(images: torch.Tensor) -> torch.Tensor:
    """Brightness shift in [-0.5, 0.5), saturation x [0, 2), contrast x [0.5, 1.5) (the paper's
    ranges). Saturation leaves a one-channel image as it is."""
    images = images + _uniform(images, -0.5, 0.5)
    grey = images.mean(dim=1, keepdim=True)
    images = (images - grey) * _uniform(images, 0.0, 2.0) + grey
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * _uniform(images, 0.5, 1.5) + mean


def translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Each image shifted by whole pixels, up to ratio * size in each direction; the uncovered
    border is 0 (mid-grey in [-1, 1])."""
    batch, _, height, width = images.shape
    reach_y, reach_x = max(1, int(height * ratio + 0.5)), max(1, int(width * ratio + 0.5))
    device = images.device
    dy = torch.randint(-reach_y, reach_y + 1, (batch, 1), device=device)
    dx = torch.randint(-reach_x, reach_x + 1, (batch, 1), device=device)
    rows = torch.arange(height, device=device)[None, :] + reach_y + dy  # (B, H) in the padding
    cols = torch.arange(width, device=device)[None, :] + reach_x + dx  # (B, W)
    padded = F.pad(images, (reach_x, reach_x, reach_y, reach_y))
    index = torch.arange(batch, device=device)[:, None, None]
    moved = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2)


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """A square of side ratio * size, centred anywhere in the image, set to 0 (it may be cut
    by the border)."""
    batch, _, height, width = images.shape
    side_y, side_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    top = torch.randint(0, height + 1 - side_y % 2, (batch, 1), device=device) - side_y // 2
    left = torch.randint(0, width + 1 - side_x % 2, (batch, 1), device=device) - side_x // 2
    ys, xs = torch.arange(height, device=device), torch.arange(width, device=device)
    inside_y = (ys[None, :] >= top) & (ys[None, :] < top + side_y)  # (B, H)
    inside_x = (xs[None, :] >= left) & (xs[None, :] < left + side_x)  # (B, W)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])  # (B, H, W)
    return images * keep[:, None].to(images.dtype)


AUGMENTATIONS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(images: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    """The policy's augmentations in the paper's order (color, translation, cutout)."""
    for name in AUGMENTATIONS:
        if name in policy:
            images = AUGMENTATIONS[name](images)
    return images
