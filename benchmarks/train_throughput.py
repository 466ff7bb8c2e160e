"""Training throughput: genbench's engine against the examples' way, same networks and batch.

Baseline, as pytorch/examples trains DCGAN and VAE (and diffusers' train_unconditional example
trains a DDPM): a torchvision-style Dataset over the source images (the raw 8×8 digits) with
per-image transforms (Resize, CenterCrop, ToTensor, Normalize), a shuffling DataLoader
(`--workers`, 2 as in the DCGAN example), plain Adam/AdamW (a loop over parameters), fp32 eager,
NCHW, and the examples' step code. Ours: the engine with the params.yaml settings (in-memory
uint8 batches, fused optimizers, the family's step, EMA every step, a final checkpoint). Both
train the same network classes with the same losses. Rounds alternate between the two; medians
are reported. Usage:

    .venv/bin/python benchmarks/train_throughput.py [--steps 200] [--rounds 3] [--workers 2]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from genbench.config.base import load_params
from genbench.core.seeding import seed_everything
from genbench.data.sources import read_raw
from genbench.families import load_family
from genbench.families.ddpm.networks import build_unet, make_scheduler
from genbench.families.ddpm.params import DdpmParams
from genbench.families.gan.networks import (
    Discriminator,
    Generator,
    discriminator_loss,
    generator_loss,
)
from genbench.families.gan.params import GanParams
from genbench.families.vae.networks import VAE, vae_loss
from genbench.families.vae.params import VaeParams
from genbench.training.engine import train
from genbench.training.runtime import Runtime

CPU = Runtime(torch.device("cpu"))


class PilDataset(Dataset):
    """As torchvision.datasets.MNIST: each item goes uint8 -> PIL -> transforms -> float."""

    def __init__(self, images: list, size: int):
        self.images = images  # (H, W, C) uint8 source images
        channels = images[0].shape[-1]
        self.transform = transforms.Compose(
            [
                transforms.Resize(size),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Normalize((0.5,) * channels, (0.5,) * channels),
            ]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index].squeeze(-1))), 0


def examples_gan_step(g, d, opt_g, opt_d, real, z_dim):
    """The DCGAN example's update: D on real, D on fake, step D; D on fake again, step G."""
    d.zero_grad()
    fake = g(torch.randn(len(real), z_dim))
    loss_d = discriminator_loss(d(real), d(fake.detach()))
    loss_d.backward()
    opt_d.step()
    g.zero_grad()
    generator_loss(d(fake)).backward()
    opt_g.step()


def examples_vae_step(vae, opt, images, beta, reconstruction):
    """The VAE example's update: forward, negative ELBO, backward, step."""
    opt.zero_grad()
    logits, mu, logvar = vae(images)
    rec, kl = vae_loss(logits, images, mu, logvar, reconstruction)
    (rec + beta * kl).backward()
    opt.step()


def examples_ddpm_step(unet, opt, scheduler, images, grad_clip):
    """diffusers' train_unconditional update: noise, random t, add_noise, MSE on eps, clip, step."""
    noise = torch.randn_like(images)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(images),))
    prediction = unet(scheduler.add_noise(images, noise, t), t).sample
    loss = torch.nn.functional.mse_loss(prediction, noise)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), grad_clip)
    opt.step()
    opt.zero_grad()


def baseline(name, params, images: list, size: int, steps: int, workers: int) -> float:
    """img/s of the pytorch/examples loop."""
    seed_everything(0)
    channels = images[0].shape[-1]
    plain = {"foreach": False, "fused": False}
    if name == "gan":
        g = Generator(params.z_dim, params.widths, channels, size)
        d = Discriminator(params.widths, channels, size)
        opt_g = torch.optim.Adam(g.parameters(), lr=params.lr_g, betas=(0.5, 0.999), **plain)
        opt_d = torch.optim.Adam(d.parameters(), lr=params.lr_d, betas=(0.5, 0.999), **plain)
        step = lambda batch: examples_gan_step(g, d, opt_g, opt_d, batch, params.z_dim)  # noqa: E731
    elif name == "ddpm":
        unet = build_unet(
            size,
            channels,
            params.block_widths,
            params.layers_per_block,
            params.attention_levels,
            params.dropout,
        )
        scheduler = make_scheduler(params.num_train_timesteps, params.beta_schedule, "epsilon")
        opt = torch.optim.AdamW(unet.parameters(), lr=params.lr, weight_decay=0.0, **plain)
        step = lambda batch: examples_ddpm_step(unet, opt, scheduler, batch, params.grad_clip)  # noqa: E731
    else:
        vae = VAE(params.z_dim, params.widths, channels, size)
        opt = torch.optim.Adam(vae.parameters(), lr=params.lr, **plain)
        recon = params.reconstruction_loss
        step = lambda batch: examples_vae_step(vae, opt, batch, params.beta, recon)  # noqa: E731
    loader = DataLoader(
        PilDataset(images, size),
        batch_size=params.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    done, start = 0, time.perf_counter()
    while done < steps:
        for batch, _ in loader:
            step(batch)
            done += 1
            if done == steps:
                break
    return steps * params.batch_size / (time.perf_counter() - start)


def ours(name, params, images: torch.Tensor, steps: int) -> float:
    """img/s of genbench's engine, EMA and the final checkpoint included."""
    seed_everything(0)
    parts = load_family(name).build(params, images.shape[1], images.shape[-1])
    cfg = params.model_copy(update={"steps": steps, "checkpoint_every": steps, "log_every": 50})
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        train(parts, images, cfg, seed=0, workdir=Path(workdir), run_hash="bench", runtime=CPU)
        return steps * params.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw", default="data/raw", help="the digits raw folder (download stage)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    parser.add_argument("--families", nargs="+", default=["gan", "vae", "ddpm"])
    parser.add_argument("--ddpm-steps", type=int, default=30, help="steps for the (slow) DDPM")
    args = parser.parse_args()
    params = load_params(args.params, gan=GanParams, vae=VaeParams, ddpm=DdpmParams)
    size = 16
    raw = read_raw(args.raw, "digits")
    source = list(raw.images)  # (8, 8, 1) uint8 each
    prepared = PilDataset(source, size)  # the same resize, done once, for the engine
    ours_images = torch.stack([((prepared[i][0] + 1) * 127.5).round() for i in range(len(source))])
    ours_images = ours_images.to(torch.uint8)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(source)} images "
        f"at {size}px, {args.steps} steps x {args.rounds} rounds, baseline workers "
        f"{args.workers}"
    )
    print(f"{'family':<8}{'baseline img/s':>16}{'genbench img/s':>16}{'ratio':>8}")
    for name in args.families:
        cfg = params[name].model_copy(update={"device": "cpu"})
        steps = args.ddpm_steps if name == "ddpm" else args.steps
        base, mine = [], []
        for _ in range(args.rounds):
            base.append(baseline(name, cfg, source, size, steps, args.workers))
            mine.append(ours(name, cfg, ours_images, steps))
        b, m = statistics.median(base), statistics.median(mine)
        print(f"{name:<8}{b:>16.0f}{m:>16.0f}{m / b:>7.2f}x")


if __name__ == "__main__":
    main()
