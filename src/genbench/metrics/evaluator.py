"""The offline feature extractor: a small CNN classifier on the dataset's own labels, registered
with torch-fidelity so FID/KID/precision-recall use its penultimate features and IS its logits.

Its numbers are comparable only with numbers from the same evaluator weights (the protocol card
records their sha256), never with Inception-based figures from papers.
"""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from tqdm import tqdm

from genbench.config.evaluate import EvaluatorParams
from genbench.core.imaging import to_unit_range
from genbench.core.seeding import seed_everything
from genbench.metrics.fidelity import register_network


class EvaluatorNet(nn.Module):
    """images (B, C, S, S) in [-1, 1] -> (penultimate features (B, D), class logits (B, K))."""

    def __init__(self, channels: int, num_classes: int, feature_dim: int = 128):
        super().__init__()
        self.channels = channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return features, self.head(features)


def evaluator_loss(net: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the class logits."""
    return F.cross_entropy(net(images)[1], labels)


def fit_evaluator(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    params: EvaluatorParams,
    seed: int,
    device: torch.device,
) -> EvaluatorNet:
    """Fit the classifier on uint8 (N, C, H, W) images and their labels; returns it in eval mode."""
    seed_everything(seed)
    net = EvaluatorNet(images.shape[1], num_classes, params.feature_dim).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=params.lr)
    rng = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(params.steps), desc="evaluator", unit="step", mininterval=1.0):
        index = torch.randint(len(images), (params.batch_size,), generator=rng)
        batch = to_unit_range(images[index]).to(device)
        loss = evaluator_loss(net, batch, labels[index].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(
    net: EvaluatorNet, images: torch.Tensor, labels: torch.Tensor, batch: int = 1024
) -> float:
    """Share of images whose arg-max logit is their label."""
    device = next(net.parameters()).device
    correct = 0
    for start in range(0, len(images), batch):
        logits = net(to_unit_range(images[start : start + batch]).to(device))[1]
        correct += int((logits.argmax(1).cpu() == labels[start : start + batch]).sum())
    return correct / len(images)


def uint8_to_input(images: torch.Tensor, channels: int, image_size: int) -> torch.Tensor:
    """torch-fidelity's uint8 (B, 3, H, W) batch -> the evaluator's float (B, C, S, S) in [-1, 1].

    Grayscale data reaches torch-fidelity repeated to 3 channels; the first C channels undo that.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"the evaluator extractor takes uint8 (B, 3, H, W) batches, got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    if tuple(images.shape[-2:]) != (image_size, image_size):
        raise ValueError(
            f"the evaluator was trained on {image_size}×{image_size} images, got "
            f"{tuple(images.shape[-2:])}; evaluate images at data.image_size"
        )
    return to_unit_range(images[:, :channels])


class _UInt8Input(nn.Module):
    """The evaluator as torch-fidelity calls it: uint8 (B, 3, S, S) in, named features out."""

    def __init__(self, net: EvaluatorNet, size: int):
        super().__init__()
        self.net, self.size = net, size

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features, logits = self.net(uint8_to_input(images, self.net.channels, self.size))
        return {"penultimate": features, "logits": logits}


def register_evaluator(name: str, state: dict, channels: int, classes: int, size: int, dim: int):
    """Register trained evaluator weights with torch-fidelity under `name` (idempotent)."""

    def build() -> nn.Module:
        net = EvaluatorNet(channels, classes, dim)
        net.load_state_dict(state)
        return _UInt8Input(net.eval(), size)

    layers = {"isc": "logits", "fid": "penultimate", "kid": "penultimate", "prc": "penultimate"}
    register_network(name, build, layers, size)
