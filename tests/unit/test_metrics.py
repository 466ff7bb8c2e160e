"""Metric correctness: torch-fidelity's FID/KID against direct formulas, SSIM, extractor input."""

import numpy as np
import pytest
import torch
from scipy import linalg

from genbench.metrics import ssim
from genbench.metrics.evaluator import EvaluatorNet, register_evaluator, uint8_to_input
from genbench.metrics.fidelity import ImageSet, fidelity_metrics

SIZE = 8


def blobs(n: int, seed: int, shift: int = 0) -> torch.Tensor:
    """uint8 (n, 1, 8, 8) images: a bright square at a random place (shifted right by `shift`)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, SIZE, SIZE, dtype=torch.uint8)
    for i in range(n):
        r, c = torch.randint(0, SIZE - 3, (2,), generator=g).tolist()
        c = min(c + shift, SIZE - 3)
        images[i, 0, r : r + 3, c : c + 3] = 200
    return images


@pytest.fixture(scope="module")
def extractor():
    """A fixed (randomly initialised) evaluator network, registered with torch-fidelity."""
    torch.manual_seed(0)
    net = EvaluatorNet(1, 10, 32).eval()
    with torch.no_grad():  # features of order 1, as a trained net gives, not 0.01
        net.body[-2].weight.mul_(30)
    register_evaluator("test-evaluator", net.state_dict(), 1, 10, SIZE, 32)
    return net


def features(net: EvaluatorNet, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        batch = uint8_to_input(images.expand(-1, 3, -1, -1), 1, SIZE)
        return net(batch)[0].double().numpy()


def metrics(a, b, n_subset, subsets=1):
    return fidelity_metrics(
        a,
        b,
        "test-evaluator",
        cuda=False,
        seed=0,
        kid_subset_size=n_subset,
        kid_subsets=subsets,
        isc_splits=2,
        prc_neighborhood=3,
        batch_size=64,
    )


def test_fid_and_kid_equal_the_direct_formulas(extractor):
    a = blobs(150, 1)
    b = torch.randint(
        0, 256, (150, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(2), dtype=torch.uint8
    )  # far apart: KID well above float32 rounding
    ours = metrics(a, b, n_subset=150)  # one subset of every sample: KID is the full unbiased MMD
    fa, fb = features(extractor, a), features(extractor, b)
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    cov_a, cov_b = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    fid = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))
    assert ours["fid"] == pytest.approx(fid, rel=1e-4)

    d = fa.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1) ** 3 for x, y in ((fa, fa), (fb, fb), (fa, fb)))
    m = len(fa)
    mmd = (
        (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
        + (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        - 2 * k_ab.mean()
    )
    assert ours["kid_mean"] == pytest.approx(mmd, rel=1e-4)


def test_fid_of_a_set_against_itself_is_zero(extractor):
    a = blobs(120, 3)
    same = metrics(a, a, n_subset=50, subsets=10)
    other = metrics(a, blobs(120, 4, shift=3), n_subset=50, subsets=10)
    assert abs(same["fid"]) < 1e-6 * max(1.0, other["fid"]) + 1e-6
    assert other["fid"] > 0
    assert same["precision"] == pytest.approx(1.0) and same["recall"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad",
    [
        torch.zeros(2, 3, SIZE, SIZE),
        torch.zeros(3, SIZE, SIZE, dtype=torch.uint8),
        torch.zeros(2, 1, SIZE, SIZE, dtype=torch.uint8),
        torch.zeros(2, 3, 16, 16, dtype=torch.uint8),
    ],
    ids=["float", "3d", "one-channel", "wrong-size"],
)
def test_extractor_refuses_wrong_input(bad):
    with pytest.raises(ValueError, match="evaluator"):
        uint8_to_input(bad, 1, SIZE)


def test_image_set_serves_three_channel_uint8():
    item = ImageSet(blobs(2, 0))[1]
    assert item.shape == (3, SIZE, SIZE) and item.dtype == torch.uint8
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 1, SIZE, SIZE))


def test_ssim_identity_and_diversity():
    images = blobs(50, 5)
    assert ssim.mean_ssim(images, images) == pytest.approx(1.0)
    clones = images[:1].repeat(50, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    assert ssim.diversity_ssim(clones, 100, g) == pytest.approx(1.0)
    assert ssim.diversity_ssim(images, 100, g) < 0.9  # distinct images are less alike
    assert ssim.kernel_size(8) == 7 and ssim.kernel_size(32) == 11
