"""Feature spaces (issue 29): the random CNN, the params that choose spaces, the DINOv2 and CLIP
paths through torch hub's cache and a weights file (with stand-ins the tests make: random
weights, never presented as the real models), and the words of agreement between spaces."""

import textwrap

import pytest
import torch
from pydantic import ValidationError

from genbench import preflight
from genbench.compare.agreement import AGREE, DIFFER, DISAGREE, agreements
from genbench.compare.verdict import rank
from genbench.config.evaluate import EvaluateParams
from genbench.core.errors import GenbenchError
from genbench.core.files import sha256_file
from genbench.core.metric_registry import HIGHER, LOWER, RAW
from genbench.evaluation.extractor import prepare_space
from genbench.evaluation.features import FeatureSets
from genbench.metrics.fidelity import extract_features, fid, open_extractor
from genbench.metrics.spaces import random_cnn, register_random_cnn, state_sha256

META = {"channels": 1, "image_size": 16}


def digits(count: int, seed: int) -> torch.Tensor:
    """Blobs on a dark background: a stand-in for real images (uint8, 1 channel)."""
    rng = torch.Generator().manual_seed(seed)
    images = torch.zeros(count, 1, 16, 16)
    for i in range(count):
        row, col = torch.randint(3, 13, (2,), generator=rng)
        images[i, 0, row - 2 : row + 3, col - 2 : col + 3] = 1.0
    return (images * 255).to(torch.uint8)


def test_random_cnn_is_fixed_and_leaves_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    first = random_cnn(1)
    assert torch.equal(torch.rand(3), expected)  # building it drew nothing from the global RNG
    assert state_sha256(first) == state_sha256(random_cnn(1))
    assert state_sha256(random_cnn(3)) != state_sha256(first)


def test_random_cnn_space_tells_noise_from_images():
    name, sha256 = register_random_cnn(1, 16)
    assert sha256 in name or sha256[:16] in name
    module = open_extractor(name, cuda=False)
    real_a, real_b = digits(200, 0), digits(200, 1)
    noise = torch.randint(0, 256, (200, 1, 16, 16), dtype=torch.uint8)
    a, b, n = (extract_features(x, module, False, 64) for x in (real_a, real_b, noise))
    assert a.features.shape == (200, 128)
    assert fid(n, b) > 20 * fid(a, b)


def test_spaces_params():
    cfg = EvaluateParams()
    assert cfg.spaces == ["evaluator", "random-cnn"]
    with pytest.raises(ValidationError, match="'dino'"):
        EvaluateParams(feature_spaces=["dino"])
    with pytest.raises(ValidationError, match="repeats"):
        EvaluateParams(feature_spaces=["evaluator"])
    with pytest.raises(ValidationError, match="space_weights: 'random-cnn'"):
        EvaluateParams(space_weights={"random-cnn": "x.pt"})
    paper = EvaluateParams(protocol="paper")
    assert paper.spaces == ["inception-v3-compat", "dinov2-vit-l-14"]


# --- CLIP from a weights file: a CLIP-class vision tower of tiny size with random weights ---


def clip_standin(path) -> None:
    """A TorchScript file shaped as OpenAI's CLIP files (visual.* and text_projection), built
    from torch-fidelity's own CLIP classes with small sizes and random weights."""
    from torch_fidelity.feature_extractor_clip import CLIPVisual

    class StandIn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = CLIPVisual(32, 32, 2, 64, 8).visual
            self.text_projection = torch.nn.Parameter(torch.randn(16, 32))

        def forward(self, x):
            return self.visual(x)

    torch.manual_seed(0)
    torch.jit.trace(StandIn().eval(), torch.zeros(1, 3, 32, 32)).save(str(path))


def test_clip_space_from_a_weights_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights = tmp_path / "clip-standin.pt"
    clip_standin(weights)
    cfg = EvaluateParams(feature_spaces=["clip-vit-b-32"], space_weights={})
    with pytest.raises(GenbenchError, match="clip-vit-b-32 weights are not in torch hub's cache"):
        preflight_or_prepare(cfg, monkeypatch)
    cfg = EvaluateParams(
        feature_spaces=["clip-vit-b-32"], space_weights={"clip-vit-b-32": str(weights)}
    )
    assert preflight.pretrained_spaces_problem(cfg) is None
    space = prepare_space("clip-vit-b-32", cfg, tmp_path, META, cuda=False)
    # labelled by the file it came from: its sha256 is the stand-in's, not OpenAI's
    assert space.weights_sha256 == sha256_file(weights) and space.weights_path == str(weights)
    sets = FeatureSets.open(space, tmp_path, tmp_path / "cache", False, 8)
    found = sets.of_images(digits(6, 0))
    assert found.features.shape == (6, 32) and torch.isfinite(found.features).all()


def preflight_or_prepare(cfg: EvaluateParams, monkeypatch) -> None:
    """What validate and the evaluate stage say of a missing CLIP file, download unreachable."""
    monkeypatch.setitem(preflight.PRETRAINED_URLS, "clip", "http://127.0.0.1:9/clip")
    problem = preflight.pretrained_spaces_problem(cfg)
    assert problem is not None and "\n" not in problem
    raise GenbenchError(problem)


# --- DINOv2 from torch hub's cache: a hub repository and checkpoint made by the test ---

HUBCONF = textwrap.dedent(
    """
    # a stand-in made by genbench's tests: a small ViT with patch 14, random weights
    import os
    import torch
    from torchvision.models import VisionTransformer

    def dinov2_vits14(pretrained=True, **kwargs):
        net = VisionTransformer(224, 14, num_layers=1, num_heads=2, hidden_dim=24, mlp_dim=48)
        net.heads = torch.nn.Identity()
        file = os.path.join(torch.hub.get_dir(), "checkpoints", "dinov2_vits14_pretrain.pth")
        net.load_state_dict(torch.load(file, weights_only=True))
        return net
    """
)


def test_dinov2_space_from_torch_hub_cache(tmp_path, monkeypatch):
    from torchvision.models import VisionTransformer

    hub = tmp_path / "torch" / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setitem(preflight.PRETRAINED_URLS, "dinov2", "http://127.0.0.1:9/dinov2")
    cfg = EvaluateParams(feature_spaces=["dinov2-vit-s-14"])
    problem = preflight.pretrained_spaces_problem(cfg)
    assert "dinov2-vit-s-14 needs torch hub's cache" in problem and "\n" not in problem
    (hub / "facebookresearch_dinov2_main").mkdir(parents=True)
    (hub / "facebookresearch_dinov2_main" / "hubconf.py").write_text(HUBCONF)
    (hub / "checkpoints").mkdir()
    net = VisionTransformer(224, 14, num_layers=1, num_heads=2, hidden_dim=24, mlp_dim=48)
    net.heads = torch.nn.Identity()
    torch.save(net.state_dict(), hub / "checkpoints" / "dinov2_vits14_pretrain.pth")
    assert preflight.pretrained_spaces_problem(cfg) is None
    space = prepare_space("dinov2-vit-s-14", cfg, tmp_path, META, cuda=False)
    assert space.weights_sha256 == sha256_file(hub / "checkpoints" / "dinov2_vits14_pretrain.pth")
    sets = FeatureSets.open(space, tmp_path, tmp_path / "cache", False, 4)
    assert sets.of_images(digits(3, 0)).features.shape == (3, 24)


# --- the words of agreement, on planted seed values ---


def verdict(values: dict[str, list[float]], better: str = LOWER) -> dict:
    return rank(values, better, RAW, 0.95, 0.1, needed=False)


def test_spaces_that_rank_two_families_oppositely_disagree():
    by_space = {
        "evaluator": {"fid": verdict({"gan": [1.0, 1.1, 0.9], "vae": [5.0, 5.2, 4.9]})},
        "random-cnn": {"fid": verdict({"gan": [6.0, 6.1, 5.9], "vae": [2.0, 2.1, 1.9]})},
    }
    found = agreements(by_space)["fid"]
    assert found["status"] == DISAGREE
    assert found["pairs"]["gan_vs_vae"]["by_space"] == {
        "evaluator": "gan ≻ vae",
        "random-cnn": "vae ≻ gan",
    }
    assert found["text"] == (
        "the feature spaces disagree on gan vs vae (evaluator: gan ≻ vae; random-cnn: vae ≻ gan)"
        "; they agree on 0 of 1 pairs"
    )


def test_spaces_that_rank_alike_agree():
    by_space = {
        "evaluator": {
            "recall": verdict({"gan": [0.9, 0.91, 0.89], "vae": [0.5, 0.52, 0.49]}, HIGHER)
        },
        "random-cnn": {
            "recall": verdict({"gan": [0.8, 0.82, 0.79], "vae": [0.3, 0.32, 0.29]}, HIGHER)
        },
    }
    found = agreements(by_space)["recall"]
    assert found["status"] == AGREE
    assert found["text"] == "the 2 feature spaces agree on every pair (evaluator, random-cnn)"


def test_one_space_separating_what_another_does_not_is_a_difference():
    by_space = {
        "evaluator": {"fid": verdict({"gan": [1.0, 3.0, 2.0], "vae": [2.0, 1.0, 3.1]})},
        "random-cnn": {"fid": verdict({"gan": [1.0, 1.1, 0.9], "vae": [5.0, 5.2, 4.9]})},
        "clip-vit-b-32": {},  # a space without this metric is left out of its agreement
    }
    found = agreements(by_space)["fid"]
    assert found["status"] == DIFFER and found["spaces"] == ["evaluator", "random-cnn"]
    assert "differ on gan vs vae (evaluator: not separated; random-cnn: gan ≻ vae)" in found["text"]
    assert agreements({"evaluator": by_space["evaluator"]}) == {}  # one space: nothing to agree
