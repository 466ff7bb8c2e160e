"""Training the offline evaluator: a plain supervised loop (it is not a generative family)."""

import torch
from tqdm import tqdm

from genbench.config.evaluate import EvaluatorParams
from genbench.metrics.evaluator import EvaluatorNet, evaluator_loss
from genbench.training.engine import seed_everything, to_unit_range


def train_evaluator(
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
