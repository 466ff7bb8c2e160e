"""Image-size arithmetic shared by the convolutional families (DCGAN, VAE, the DDPM UNet)."""

import math


def doublings(image_size: int) -> int:
    """How many 2× steps lead from 4×4 to image_size; raises ValueError when none fits."""
    steps = math.log2(image_size / 4) if image_size >= 8 else 0.5
    if not steps.is_integer() or not 1 <= steps <= 4:
        raise ValueError(f"image_size must be 8, 16, 32 or 64 for these models, got {image_size}")
    return int(steps)


def check_widths(widths: list[int], image_size: int) -> None:
    """One width per 2× step between 4×4 and image_size, or a ValueError saying how many."""
    if len(widths) != doublings(image_size):
        raise ValueError(
            f"widths has {len(widths)} entries but image_size {image_size} needs "
            f"{doublings(image_size)} (one per 2× step between 4×4 and the image size)"
        )


def check_levels(image_size: int, levels: int) -> None:
    """A UNet with `levels` resolutions halves image_size levels - 1 times, evenly."""
    if image_size % 2 ** (levels - 1):
        raise ValueError(
            f"image_size {image_size} cannot be halved {levels - 1} times for {levels} UNet "
            "levels; use fewer block_widths"
        )


def widths_problem(section: str, key: str, widths: list[int], image_size: int) -> str | None:
    """check_widths as a message naming the key (`gan.widths`), or data.image_size when no
    width list can fit it; None when the widths fit."""
    try:
        doublings(image_size)
    except ValueError:
        return f"data.image_size = {image_size}: {section} needs 8, 16, 32 or 64"
    try:
        check_widths(widths, image_size)
    except ValueError as err:
        return f"{section}.{key} = {widths}: {err}"
    return None


def levels_problem(section: str, key: str, widths: list[int], image_size: int) -> str | None:
    """check_levels as a message naming the key (`ddpm.block_widths`), or None."""
    try:
        check_levels(image_size, len(widths))
    except ValueError as err:
        return f"{section}.{key} = {widths}: {err}"
    return None
