"""Feature spaces other than the trained evaluator: a fixed randomly initialised CNN, which needs
no weights file and no labels, and the names of torch-fidelity's pretrained extractors.

The random CNN follows Naeem et al. 2020 ("Reliable fidelity and diversity metrics for generative
models", section 5), who found the embeddings of a randomly initialised network a sound space for
precision/recall/density/coverage on data unlike ImageNet. Its weights come from a fixed seed
(`RANDOM_CNN_SEED`), so every run and machine with this torch version has the same network; the
protocol card records their sha256. It has no classes, so no IS is computed in it.
"""

import hashlib

import torch
from torch import nn

from genbench.core.imaging import to_unit_range
from genbench.metrics.fidelity import register_network

RANDOM_CNN_SEED = 20200521  # fixed: the space must not change between runs
RANDOM_CNN_DIM = 128  # as the evaluator's features: FID's covariance fits a few hundred images


class RandomCNN(nn.Module):
    """images (B, C, S, S) in [-1, 1] -> (B, RANDOM_CNN_DIM) features of a never-trained CNN:
    three conv + ReLU stages, an average pool to 2×2 and a fixed random projection.

    Another architecture than the evaluator's (no batch norm, wider, spatial pooling kept), so
    the two spaces share as little as two CNNs can."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AvgPool2d(2, ceil_mode=True),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 128, RANDOM_CNN_DIM, bias=False),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


def random_cnn(channels: int) -> RandomCNN:
    """The random CNN for images of `channels` channels, its weights drawn from RANDOM_CNN_SEED
    without touching the global random state: He-normal convolutions and a projection of
    standard deviation 2/sqrt(fan-in). KID's cubic kernel (x·y/d + 1)^3 is not scale-free: with
    PyTorch's default init the features are ~100× smaller and the kernel is flat near 1; with
    this one, x·y/d averages about 0.8 on the bundled digits (the evaluator's: 1.6)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_CNN_SEED)
        net = RandomCNN(channels)
        for layer in net.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
            elif isinstance(layer, nn.Linear):
                nn.init.normal_(layer.weight, std=2 * layer.in_features**-0.5)
    return net.eval().requires_grad_(False)


def state_sha256(net: nn.Module) -> str:
    """sha256 of a network's parameters (names, shapes and bytes, in order): names the weights
    in the protocol card and the feature cache as a weights file's digest would."""
    digest = hashlib.sha256()
    for key, tensor in net.state_dict().items():
        digest.update(f"{key}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class _RandomCNNInput(nn.Module):
    """The random CNN as torch-fidelity calls it: uint8 (B, 3, S, S) in, its features out."""

    def __init__(self, net: RandomCNN):
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"random": self.net(to_unit_range(images[:, : self.net.channels]))}


def register_random_cnn(channels: int, size: int) -> tuple[str, str]:
    """Register the random CNN for this data with torch-fidelity; (its registered name, the
    sha256 of its weights)."""
    sha256 = state_sha256(random_cnn(channels))
    name = f"genbench-random-cnn-{channels}-{sha256[:16]}"
    layers = dict.fromkeys(("fid", "kid", "prc", "isc"), "random")
    register_network(name, lambda: _RandomCNNInput(random_cnn(channels)), layers, size)
    return name, sha256
