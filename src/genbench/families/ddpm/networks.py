"""DDPM (Ho et al. 2020): diffusers' UNet2DModel as the noise predictor, diffusers' schedulers for
the forward process and for sampling (ancestral DDPM, or DDIM: Song et al. 2021). No schedule math
is written here: q(x_t | x_0), the loss targets and the reverse steps all come from diffusers.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from genbench.families.common.sizes import check_levels


def build_unet(
    image_size: int,
    channels: int,
    block_widths: list[int],
    layers_per_block: int,
    attention_levels: list[int],
    dropout: float,
) -> UNet2DModel:
    """A UNet whose level i has block_widths[i] channels (and self-attention if i is listed)."""
    levels = len(block_widths)
    check_levels(image_size, levels)
    down = tuple(
        "AttnDownBlock2D" if i in attention_levels else "DownBlock2D" for i in range(levels)
    )
    up = tuple(
        "AttnUpBlock2D" if i in attention_levels else "UpBlock2D" for i in reversed(range(levels))
    )
    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(block_widths),
        layers_per_block=layers_per_block,
        down_block_types=down,
        up_block_types=up,
        dropout=dropout,
        norm_num_groups=norm_groups(block_widths),
        attention_head_dim=min(8, min(block_widths)),
    )


def norm_groups(block_widths: list[int]) -> int:
    """GroupNorm's group count: the largest divisor of every width up to 32 (diffusers' default),
    so widths such as [48, 96, 96] build (min(32, gcd) = 32 does not divide 48)."""
    common = math.gcd(*block_widths)
    return max(g for g in range(1, min(32, common) + 1) if common % g == 0)


def make_scheduler(
    num_train_timesteps: int, beta_schedule: str, prediction_type: str
) -> DDPMScheduler:
    """The forward process q(x_t | x_0) (Ho et al. eq. 4) and the ancestral reverse step."""
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule=beta_schedule,
        prediction_type=prediction_type,
    )


def min_snr_weights(scheduler: DDPMScheduler, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ loss weights per sample (Hang et al. 2023, "Efficient Diffusion Training via
    Min-SNR Weighting Strategy", eq. 8 and section 3.4): min(SNR(t), γ) / SNR(t) for an epsilon
    target, min(SNR(t), γ) / (SNR(t) + 1) for a v target; SNR(t) = a_t / (1 - a_t) with a_t
    the scheduler's alphas_cumprod. Steps of high SNR (little noise) weigh less."""
    alphas = scheduler.alphas_cumprod.to(t.device)[t].float()
    snr = alphas / (1 - alphas)
    clipped = snr.clamp(max=gamma)
    if scheduler.config.prediction_type == "epsilon":
        return clipped / snr
    return clipped / (snr + 1)


def diffusion_loss(
    unet: torch.nn.Module,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    snr_gamma: float | None = None,
) -> torch.Tensor:
    """Simple loss (Ho et al. eq. 14): MSE between the UNet's output and its target at random t;
    with snr_gamma, each sample's MSE weighted by min_snr_weights.

    Target: the noise eps (epsilon) or v = sqrt(a_t) eps - sqrt(1 - a_t) x0 (v_prediction,
    Salimans & Ho 2022), as the scheduler defines it. x0: (B, C, H, W) in [-1, 1].
    """
    noise = torch.randn_like(x0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), device=x0.device)
    x_t = scheduler.add_noise(x0, noise, t)
    if scheduler.config.prediction_type == "epsilon":
        target = noise
    else:
        target = scheduler.get_velocity(x0, noise, t)
    prediction = unet(x_t, t, return_dict=False)[0]
    if snr_gamma is None:
        return F.mse_loss(prediction.float(), target.float())
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").mean((1, 2, 3))
    return (min_snr_weights(scheduler, t, snr_gamma) * per_sample).mean()


def reverse_process(
    scheduler: DDPMScheduler, sampler: str, steps: int, eta: float
) -> tuple[DDPMScheduler | DDIMScheduler, dict]:
    """The reverse scheduler, its timesteps set, and the extra arguments of its step().

    Both start from pure noise at t = num_train_timesteps - 1. Ancestral sampling visits every
    training step. DDIM uses "trailing" spacing (Lin et al. 2024, "Common Diffusion Noise
    Schedules and Sample Steps are Flawed"): the training config's "leading" spacing would start
    50 steps of 1000 at t = 980, treating pure noise as less noisy than it is.
    """
    if sampler == "ancestral":
        reverse = DDPMScheduler.from_config(scheduler.config)
        reverse.set_timesteps(scheduler.config.num_train_timesteps)
        return reverse, {}
    if sampler == "ddim":
        reverse = DDIMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
        reverse.set_timesteps(steps)
        return reverse, {"eta": eta}
    raise ValueError(f"sampler must be 'ddim' or 'ancestral', got {sampler!r}")


@torch.no_grad()
def generate(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    n: int,
    generator: torch.Generator,
    sampler: str = "ddim",
    steps: int = 50,
    eta: float = 0.0,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1]: ancestral sampling over every training step, or DDIM
    with `steps` steps and `eta`. All noise comes from `generator` (CPU): a seed fixes the result.
    `progress(fraction done)` is called after each step (it draws no noise).
    """
    reverse, extra = reverse_process(scheduler, sampler, steps, eta)
    device = next(unet.parameters()).device
    size, channels = unet.config.sample_size, unet.config.in_channels
    x = torch.randn(n, channels, size, size, generator=generator).to(device)
    for i, t in enumerate(reverse.timesteps, start=1):
        output = unet(x, t.to(device), return_dict=False)[0]
        # the schedulers draw their step noise from `generator` (on the CPU, then moved)
        x = reverse.step(output, t, x, generator=generator, **extra).prev_sample
        if progress is not None:
            progress(i / len(reverse.timesteps))
    return x.clamp(-1, 1)
