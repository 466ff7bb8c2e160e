"""Metric correctness: FID/KID, precision/recall/density/coverage and the copy rate against
direct computations, the KID subset rule, the paper preset, SSIM, extractor input."""

import numpy as np
import pytest
import torch
from scipy import linalg
from sklearn.datasets import load_digits

from genbench.config.evaluate import EvaluateParams
from genbench.evaluation.card import protocol_card
from genbench.evaluation.extractor import Extractor
from genbench.evaluation.scoring import floor_split
from genbench.metrics import ssim
from genbench.metrics.evaluator import EvaluatorNet, register_evaluator, uint8_to_input
from genbench.metrics.fidelity import (
    Features,
    ImageSet,
    extract_features,
    fid,
    kid,
    kid_subset_size,
    open_extractor,
)
from genbench.metrics.neighbours import equal_size_prdc, memorisation

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


def extracted(images: torch.Tensor) -> Features:
    """Features through the torch-fidelity path the evaluation uses."""
    return extract_features(images, open_extractor("test-evaluator", cuda=False), False, 64)


def test_fid_and_kid_equal_the_direct_formulas(extractor):
    a = blobs(150, 1)
    b = torch.randint(
        0, 256, (150, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(2), dtype=torch.uint8
    )  # far apart: KID well above float32 rounding
    ga, gb = extracted(a), extracted(b)
    # one subset of every sample (called directly, past the half rule): the full unbiased MMD
    ours = {"fid": fid(ga, gb), **kid(ga, gb, subset_size=150, subsets=1, seed=0)}
    fa, fb = features(extractor, a), features(extractor, b)
    assert ga.features.double().numpy() == pytest.approx(fa, abs=1e-4)
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    cov_a, cov_b = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    direct = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))
    assert ours["fid"] == pytest.approx(direct, rel=1e-4)

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
    a = extracted(blobs(120, 3))
    same, other = fid(a, a), fid(a, extracted(blobs(120, 4, shift=3)))
    assert abs(same) < 1e-6 * max(1.0, other) + 1e-6
    assert other > 0


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


def test_kid_subset_rule_keeps_the_real_floor_within_its_uncertainty_of_zero():
    """Half the smaller set at most, so every subset redraws both sides; two sets from one
    distribution (the real floor's situation) then read 0 within kid_std, while subsets holding
    the whole reference repeat its sampling error in every estimate and shrink the spread."""
    assert kid_subset_size(1000, 1000, 360) == 180
    assert kid_subset_size(100, 1000, 360) == 100
    with pytest.raises(ValueError, match="at least 4"):
        kid_subset_size(1000, 1000, 3)
    spread = {}
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        a, b = (Features(torch.randn(n, 16, generator=g), torch.zeros(n, 2)) for n in (400, 120))
        ours = kid(a, b, kid_subset_size(1000, len(a), len(b)), subsets=50, seed=seed)
        whole = kid(a, b, 120, subsets=50, seed=seed)  # the old cap: the whole reference
        assert abs(ours["kid_mean"]) <= ours["kid_std"], (seed, ours)
        spread[seed] = (ours["kid_std"], whole["kid_std"])
    assert all(new > 1.5 * old for new, old in spread.values()), spread


def direct_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """Kynkäänniemi et al. 2019 precision/recall, Naeem et al. 2020 density/coverage, by loops."""

    def radius(points, i):  # distance to the k-th nearest other point
        return sorted(np.linalg.norm(points - points[i], axis=1))[k]

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    d = np.array([[np.linalg.norm(x - y) for y in fake] for x in real])  # (real, fake)
    inside = d < np.array(r_real)[:, None]  # fake j inside real i's ball
    return {
        "precision": inside.any(0).mean(),
        "recall": (d < np.array(r_fake)[None, :]).any(1).mean(),
        "density": inside.sum(0).mean() / k,
        "coverage": np.mean([d[i].min() < r_real[i] for i in range(len(real))]),
    }


def test_equal_size_prdc_against_a_direct_knn_computation():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(20, 4)).astype(np.float32)
    fake = (rng.normal(size=(60, 4)) * 0.7 + 0.5).astype(np.float32)
    ours = equal_size_prdc(torch.from_numpy(fake), torch.from_numpy(real), 3, 4, 7, 1000)
    draws = np.random.default_rng(7)  # the same seeded draws: 20 of the 60 fakes each time
    expected = []
    for _ in range(4):
        pick_fake, pick_real = (draws.permutation(n)[:20] for n in (60, 20))
        expected.append(direct_prdc(real[pick_real], fake[pick_fake], 3))
    for name in ("precision", "recall", "density", "coverage"):
        values = [e[name] for e in expected]
        assert ours[name] == pytest.approx(np.mean(values), abs=1e-9), name
        assert ours[f"{name}_std"] == pytest.approx(np.std(values), abs=1e-9), name
    assert 0 < ours["recall"] < 1 and 0 < ours["coverage"] < 1  # not a degenerate case
    with pytest.raises(ValueError, match="prc_neighborhood"):
        equal_size_prdc(torch.from_numpy(fake), torch.from_numpy(real[:3]), 3, 1, 0, 1000)


def test_copy_rate_of_planted_copies_and_of_unseen_images(extractor):
    """A "model" that returns training images copies all of them; one that returns unseen real
    images copies about as often as the percentile says (features of the real extractor path)."""
    digits = torch.from_numpy(load_digits().images * 255 / 16).round().to(torch.uint8)
    images = digits[torch.randperm(len(digits), generator=torch.Generator().manual_seed(0))]
    train, test, unseen = images[:1000, None], images[1000:1400, None], images[1400:, None]
    pool, held_out = extracted(train).features, extracted(test).features
    copies = memorisation(extracted(train[:300]).features, held_out, pool, 1.0)
    fresh = memorisation(extracted(unseen).features, held_out, pool, 1.0)
    assert copies.copy_rate == 1.0 and copies.median_sample_to_train == 0.0
    assert fresh.copy_rate < 0.05 and fresh.median_sample_to_train > copies.threshold
    assert fresh.median_test_to_train == copies.median_test_to_train > 0
    # the test images themselves sit at the percentile by construction
    own = memorisation(held_out, held_out, pool, 10.0)
    assert own.copy_rate == pytest.approx(0.10, abs=0.01)


def test_paper_preset_resolves_to_the_papers_protocol():
    paper = EvaluateParams(protocol="paper", num_samples=1000, feature_extractor="evaluator")
    assert paper.feature_extractor == "inception-v3-compat" and paper.num_samples == 50_000
    assert paper.reference_split == "train" and floor_split(paper) == "test"
    custom = EvaluateParams()
    assert custom.reference_split == "test" and floor_split(custom) == "train"
    meta = {
        "counts": {"train": 50_000, "test": 10_000},
        "sha256": {"train_images.npy": "a" * 64, "test_images.npy": "b" * 64},
        "image_size": 32,
    }
    weights = "6726825d" + "0" * 56  # torch hub names the real weights after their sha256
    inception = Extractor("inception-v3-compat", "inception-v3-compat", weights, None, "299")
    card = protocol_card(paper, inception, 50_000, meta, 0, None, None)
    assert card["reference"] == {"split": "train", "size": 50_000, "sha256": "a" * 64}
    assert card["comparable_with_papers"] and card["kid"]["subset_size"] == 1000
    assert card["prdc"]["set_size"] == 10_000 and card["val"] is None
    other = Extractor("inception-v3-compat", "inception-v3-compat", "f" * 64, None, "299")
    assert not protocol_card(paper, other, 50_000, meta, 0, None, None)["comparable_with_papers"]
    floor = protocol_card(custom, inception, 1000, meta, 0, None, "train")
    assert not floor["comparable_with_papers"] and not floor["memorisation"]["computed"]
