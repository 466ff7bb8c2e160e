"""The protocol card (metrics/<name>.protocol.json): every choice behind one evaluation's
numbers, so they can be reproduced, or refused a comparison.
"""

import hashlib
import importlib.metadata
import json
from typing import Any

from genbench.config.evaluate import EvaluateParams
from genbench.core.layout import COMPARABLE, INCEPTION_FILE
from genbench.evaluation.extractor import Extractor
from genbench.metrics import ssim
from genbench.metrics.fidelity import kid_subset_size
from genbench.metrics.neighbours import equal_size

# torch hub names weights files after the first hex digits of their sha256
INCEPTION_SHA256_PREFIX = INCEPTION_FILE.rsplit("-", 1)[1].split(".")[0]
KID_STD = (
    "standard deviation of the KID over the subsets; each subset draws both sets afresh and "
    "holds at most half of the smaller one, so this spread of single-subset estimates bounds "
    "the sampling error of kid_mean from above (to leading order)"
)


def protocol_id(card: dict[str, Any]) -> int:
    """A number naming the card's COMPARABLE part (48 bits of its sha256): the metrics file
    carries it (`protocol.id`), so a later report can tell, from git alone, whether two
    evaluations' numbers may be compared (the card itself is a DVC-cached file)."""
    part = json.dumps({key: card.get(key) for key in COMPARABLE}, sort_keys=True)
    return int(hashlib.sha256(part.encode()).hexdigest()[:12], 16)


def split_info(meta: dict, split: str) -> dict[str, Any]:
    """A prepared split as the card names it: its name, size and the sha256 of its images."""
    return {
        "split": split,
        "size": meta["counts"][split],
        "sha256": meta["sha256"][f"{split}_images.npy"],
    }


def protocol_card(
    cfg: EvaluateParams,
    extractor: Extractor,
    generated_count: int,
    meta: dict,
    seed: int,
    sampler: dict | None,
    floor: str | None,
    spaces: list[Extractor] = (),
) -> dict[str, Any]:
    """Everything needed to reproduce (or refuse to compare) the numbers. `floor`: the split
    the real-data floor's images came from; None for a model. `spaces`: the feature spaces
    scored besides the primary one (`feature_extractor`)."""
    reference = split_info(meta, cfg.reference_split)
    versions = {
        pkg: importlib.metadata.version(pkg)
        for pkg in ("torch", "torch-fidelity", "torchmetrics", "diffusers", "prdc")
    }
    return {
        "protocol": cfg.protocol,
        "comparable_with_papers": cfg.protocol == "paper"
        and extractor.weights_sha256.startswith(INCEPTION_SHA256_PREFIX),
        "num_samples": generated_count,
        "reference": reference,
        "real_floor": None if floor is None else {"split": floor, "count": generated_count},
        "feature_extractor": {"name": extractor.label, "weights_sha256": extractor.weights_sha256},
        "resize": extractor.resize,
        # each further space's numbers: its own group in the metrics file, no IS, no curve
        "feature_spaces": [
            {
                "name": space.label,
                "weights_sha256": space.weights_sha256,
                "resize": space.resize,
                "metrics": [
                    "fid",
                    "kid_mean",
                    "kid_std",
                    "precision",
                    "recall",
                    "density",
                    "coverage",
                ],
            }
            for space in spaces
        ],
        "seeds": {"sampling": seed, "kid_subsets_prdc_draws_and_ssim_pairs": seed},
        "sampler": sampler,
        "kid": kid_card(cfg, generated_count, reference["size"]),
        "isc_splits": cfg.isc_splits,
        "prdc": prdc_card(cfg, generated_count, reference["size"]),
        "memorisation": memorisation_card(cfg, meta, floor),
        "val": val_card(cfg, generated_count, meta),
        "curve": curve_card(cfg, generated_count, reference["size"], floor),
        "ssim": ssim.describe(meta["image_size"]),
        "ssim_pairs": cfg.ssim_pairs,
        "versions": versions,
    }


def kid_card(cfg: EvaluateParams, generated_count: int, reference_size: int) -> dict[str, Any]:
    return {
        "subset_size": kid_subset_size(cfg.kid_subset_size, generated_count, reference_size),
        "subset_rule": "min(kid_subset_size, half the generated set, half the reference set)",
        "kid_subset_size": cfg.kid_subset_size,
        "subsets": cfg.kid_subsets,
        "kid_std": KID_STD,
    }


def prdc_card(cfg: EvaluateParams, generated_count: int, reference_size: int) -> dict[str, Any]:
    size = equal_size(generated_count, reference_size, cfg.prc_max_size, cfg.prc_neighborhood)
    return {
        "metrics": "precision, recall (Kynkäänniemi et al. 2019), density, coverage (Naeem et "
        "al. 2020), by the prdc package: mean over the repeats, *_std their spread",
        "nearest_k": cfg.prc_neighborhood,
        "set_size": size,
        "set_rule": "both sets cut to min(generated, reference, prc_max_size) images, drawn "
        "afresh each repeat",
        "prc_max_size": cfg.prc_max_size,
        "repeats": cfg.prc_repeats,
    }


def memorisation_card(cfg: EvaluateParams, meta: dict, floor: str | None) -> dict[str, Any]:
    if floor is not None:
        return {
            "computed": False,
            "why": "the real floor's images are training images (under the paper protocol: "
            "the test images that set the threshold), so a copy rate of them says nothing",
        }
    return {
        "computed": True,
        "space": "the extractor's FID features, Euclidean distance",
        "pool": split_info(meta, "train"),
        "baseline": split_info(meta, "test"),
        "percentile": cfg.memorisation_percentile,
        "copy_rule": "copy_rate: share of samples whose nearest training image is at most "
        "threshold away; threshold: that percentile of the test images' distances to their "
        "nearest training image",
    }


def val_card(cfg: EvaluateParams, generated_count: int, meta: dict) -> dict[str, Any] | None:
    if "val" not in meta["counts"]:
        return None
    val = split_info(meta, "val")
    size = kid_subset_size(cfg.kid_subset_size, generated_count, val["size"])
    return {**val, "metrics": ["fid", "kid_mean", "kid_std"], "kid_subset_size": size}


def curve_card(
    cfg: EvaluateParams, generated_count: int, reference_size: int, floor: str | None
) -> dict[str, Any] | None:
    """How the quality-against-compute points were scored (None: curve_samples 0)."""
    count = min(cfg.curve_samples, generated_count)
    if not count:
        return None
    return {
        "samples": count,
        "metrics": ["fid", "kid_mean", "kid_std"],
        "reference": cfg.reference_split,
        "space": "the primary feature space (feature_extractor) only",
        "kid_subset_size": kid_subset_size(cfg.kid_subset_size, count, reference_size),
        "points": "the real floor's first images"
        if floor is not None
        else "each snapshot's samples drawn with the model's sampling seed; the last point "
        "(the final weights): the first of the full evaluation's samples",
        "comparable": "with the other curve points and the floor at this count only: FID's "
        "bias grows as the count falls",
        # compare/curves.py judges the curve on KID alone (metric_registry.CURVE_VERDICT_METRIC)
        "verdict": "KID only: unbiased at any sample count; FID's bias at this count differs "
        "between models (Chong & Forsyth 2020), so FID is drawn but not ranked",
    }
