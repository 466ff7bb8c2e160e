"""A table of bad inputs: each stops `genbench validate` with exit 2 and one line naming the key,
and `make run` (`genbench validate`'s checks, then the graph) then touches none of the
pipeline's outputs.

The real pipeline runs once, on tiny params, in a copy of the project (conftest's tiny_graph,
shared by the session); every case then writes its bad params.yaml (or environment) into a copy
of that and checks the outputs' sha256 are unchanged.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.integration.conftest import TinyGraph, copy_tree
from tests.integration.processes import free_port

BIN = Path(sys.executable).parent
OUTPUTS = ("data", "models", "metrics", "figures", "reports", "dvc.lock")
DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens: any download through it fails at once


def env_for(root: Path, extra: dict | None = None) -> dict:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(root / "src"),  # the copy's code
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "GENBENCH_PIPELINE_ID": "bad-inputs",
    }
    env.update(extra or {})
    return env


def sh(command: str, root: Path, extra: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        shell=True,
        cwd=root,
        env=env_for(root, extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every file of the pipeline's outputs (and dvc.lock), by relative path."""
    found = {}
    for name in OUTPUTS:
        top = root / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file():
                found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_graph: TinyGraph) -> Path:
    """A copy of the project after one real `dvc repro` on tiny params (the session's tiny
    graph; test_good_params_pass_and_make_run_is_a_no_op checks its params validate)."""
    return copy_tree(tiny_graph.root, tmp_path_factory.mktemp("bad-inputs") / "repo")


@pytest.fixture(scope="module")
def baseline(project) -> dict[str, str]:
    found = fingerprint(project)
    assert any(k.startswith("models/gan-0/") for k in found) and "dvc.lock" in found
    assert any(k.startswith("reports/") for k in found)
    return found


def good_params(root: Path) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text())


def set_key(params: dict, dotted: str, value) -> dict:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    return params


def drop_key(params: dict, dotted: str) -> dict:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    del node[leaf]
    return params


def image_folder(root: Path, kind: str) -> str:
    """A data.folder for a case: empty, unlabelled, mostly corrupt, or mostly over PIL's pixel
    limit (a 12×12 image beside 4096×4096 ones; the test lowers the limit to 10^6 pixels)."""
    folder = root.parent / f"images-{kind}"
    if folder.exists():
        return str(folder)
    folder.mkdir()
    for i in range(10 if kind != "empty" else 0):
        if kind == "bombs" and i < 8:
            (folder / "class0").mkdir(exist_ok=True)
            Image.new("L", (4096, 4096)).save(folder / f"class0/{i}.png")
            continue
        sub = folder if kind == "unlabelled" else folder / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        if kind == "corrupt" and i < 8:
            (sub / f"{i}.png").write_bytes(b"not a png" * 10)
        else:
            Image.new("L", (12, 12), 20 * i).save(sub / f"{i}.png")
    return str(folder)


def text_case(root: Path, kind: str) -> bytes:
    """params.yaml bytes for the cases YAML cannot express as a changed mapping."""
    text = yaml.safe_dump(good_params(root), sort_keys=False).encode()
    edits = {
        "duplicate": (b"gan:\n", b"gan:\n  steps: 5\n"),
        "non_utf8": (b"  z_dim: 8\n", b"  z_dim: 8\xff\n"),  # a Latin-1 byte
        "inf": (b"  beta: 1.0\n", b"  beta: .inf\n"),
        "nan": (b"  lr: 0.001\n", b"  lr: .nan\n"),
        "syntax": (b"  z_dim: 8\n", b"  z_dim: [8\n"),
        # YAML 1.1 (genbench) and 1.2 (DVC) read these differently: 8 or 10, false or 'no'
        "octal": (b"seed: 0\n", b"seed: 010\n"),
        "yes_no": (b"  compile: false\n", b"  compile: no\n"),
        "anchor": (b"gan:\n", b"gan: &engine\n"),
    }
    old, new = edits[kind]
    assert old in text, kind
    return text.replace(old, new, 1)


def torch_devices() -> tuple[bool, int, bool]:
    import torch

    return torch.cuda.is_available(), torch.cuda.device_count(), torch.backends.mps.is_available()


CUDA, CUDA_COUNT, MPS = torch_devices()
no_cuda = pytest.mark.skipif(CUDA, reason="this machine has CUDA")

# (id, change, the key the message must name, extra environment). A change is a dict of dotted
# keys to set, ("drop", key), ("text", kind), ("folder", kind, extra changes) or None.
CASES = [
    ("image_size_12", {"data.image_size": 12}, "data.image_size", None),
    ("image_size_16_gan_widths", {"data.image_size": 16}, "gan.widths", None),
    ("gan_widths_count", {"gan.widths": [16, 16]}, "gan.widths", None),
    ("vae_widths_count", {"vae.widths": [16, 16]}, "vae.widths", None),
    ("ddpm_block_widths", {"ddpm.block_widths": [8] * 5}, "ddpm.block_widths", None),
    ("gan_cuda", {"gan.device": "cuda"}, "gan.device", None),
    ("vae_cuda_3", {"vae.device": "cuda:3"}, "vae.device", None),
    ("evaluate_cuda", {"evaluate.device": "cuda"}, "evaluate.device", None),
    ("ddpm_mps", {"ddpm.device": "mps"}, "ddpm.device", None),
    ("device_typo", {"gan.device": "gpu"}, "gan.device", None),
    (
        "inception_offline",
        {"evaluate.feature_extractor": "inception-v3-compat"},
        "evaluate.inception_weights",
        "offline",
    ),
    (
        "inception_missing_file",
        {
            "evaluate.feature_extractor": "inception-v3-compat",
            "evaluate.inception_weights": "no.pth",
        },
        "evaluate.inception_weights",
        None,
    ),
    (
        "inception_bad_file",
        {
            "evaluate.feature_extractor": "inception-v3-compat",
            "evaluate.inception_weights": "dvc.yaml",
        },
        "evaluate.inception_weights",
        None,
    ),
    (
        "dinov2_offline",
        {"evaluate.feature_spaces": ["random-cnn", "dinov2-vit-s-14"]},
        "dinov2-vit-s-14",
        "offline",
    ),
    (
        "clip_missing_file",
        {
            "evaluate.feature_spaces": ["clip-vit-b-32"],
            "evaluate.space_weights": {"clip-vit-b-32": "no.pt"},
        },
        "evaluate.space_weights.clip-vit-b-32",
        None,
    ),
    ("space_unknown", {"evaluate.feature_spaces": ["dino"]}, "evaluate.feature_spaces", None),
    ("folder_null", {"data.source": "folder"}, "data.folder", None),
    ("folder_missing", {"data.source": "folder", "data.folder": "nowhere"}, "data.folder", None),
    ("folder_is_file", {"data.source": "folder", "data.folder": "dvc.yaml"}, "data.folder", None),
    ("folder_empty", ("folder", "empty"), "data.folder", None),
    ("folder_corrupt", ("folder", "corrupt"), "data.folder", None),
    ("folder_bombs", ("folder", "bombs"), "data.folder", "small_pixel_limit"),
    ("folder_unlabelled", ("folder", "unlabelled"), "evaluate.feature_extractor", None),
    (
        "isc_splits",
        {"evaluate.num_samples": 5, "evaluate.isc_splits": 10},
        "evaluate.isc_splits",
        None,
    ),
    (
        "prc_neighborhood",
        {"evaluate.num_samples": 5, "evaluate.isc_splits": 2, "evaluate.prc_neighborhood": 5},
        "evaluate.prc_neighborhood",
        None,
    ),
    ("ssim_pairs", {"evaluate.ssim_pairs": 10**8}, "evaluate.ssim_pairs", None),
    ("kid_subsets", {"evaluate.kid_subsets": 10**7}, "evaluate.kid_subsets", None),
    ("gan_null", {"gan": None}, "gan", None),
    ("gan_deleted", ("drop", "gan"), "gan", None),
    ("evaluate_deleted", ("drop", "evaluate"), "evaluate", None),
    ("data_folder_deleted", ("drop", "data.folder"), "data.folder", None),
    ("seed_deleted", ("drop", "seed"), "seed", None),
    ("duplicate_key", ("text", "duplicate"), "gan.steps", None),
    ("beta_inf", ("text", "inf"), "vae.beta", None),
    ("lr_nan", ("text", "nan"), "vae.lr", None),
    ("non_utf8", ("text", "non_utf8"), "z_dim", None),
    ("yaml_syntax", ("text", "syntax"), "line", None),
    ("seed_octal", ("text", "octal"), "seed", None),
    ("yes_no", ("text", "yes_no"), "gan.compile", None),
    ("anchor", ("text", "anchor"), "anchors", None),
    ("seed_negative", {"seed": -1}, "seed", None),
    ("unknown_section", {"gann": {"steps": 1}}, "gann", None),
    ("unknown_key", {"gan.lr": 0.1}, "gan.lr", None),
    ("source_unknown", {"data.source": "imagenet"}, "data.source", None),
    ("steps_zero", {"gan.steps": 0}, "gan.steps", None),
    ("batch_size_string", {"vae.batch_size": "16"}, "vae.batch_size", None),
    ("attention_levels", {"ddpm.attention_levels": [5]}, "ddpm.attention_levels", None),
    ("sample_steps", {"ddpm.sample_steps": 100}, "ddpm.sample_steps", None),
    ("test_fraction", {"data.test_fraction": 1.0}, "data.test_fraction", None),
    ("val_fraction", {"data.val_fraction": 0.0}, "data.val_fraction", None),
    ("test_fraction_tiny", {"data.test_fraction": 0.001}, "data.test_fraction", None),
    (
        "prc_neighborhood_over_test_split",
        {"evaluate.num_samples": 1000, "evaluate.prc_neighborhood": 500},
        "evaluate.prc_neighborhood",
        None,
    ),
    ("num_samples_2", {"evaluate.num_samples": 2}, "evaluate.num_samples", None),
    (
        "budget_absurd",
        {"compare.budget": {"unit": "images", "amount": 1e15}},
        "compare.budget",
        None,
    ),
    ("seeds_repeated", {"compare.seeds": [0, 0]}, "compare.seeds", None),
    ("seeds_empty", {"compare.seeds": []}, "compare.seeds", None),
    ("budget_without_amount", {"compare.budget.unit": "flops"}, "compare.budget", None),
    (
        "extractor_unknown",
        {"evaluate.feature_extractor": "clip"},
        "evaluate.feature_extractor",
        None,
    ),
    ("retries", {"orchestration.retries": 99}, "orchestration.retries", None),
    ("workers_0", {"orchestration.workers": 0}, "orchestration.workers", None),
    ("cluster_no_scheme", {"orchestration.cluster": "h:8786"}, "orchestration.cluster", None),
    ("tracking_file_uri", None, "MLFLOW_TRACKING_URI", {"MLFLOW_TRACKING_URI": "file:///tmp/x"}),
    ("tracking_plain_path", None, "MLFLOW_TRACKING_URI", {"MLFLOW_TRACKING_URI": "mlruns"}),
    ("tracking_sqlite_dir", None, "MLFLOW_TRACKING_URI", "sqlite_dir"),
    ("tracking_sqlite_read_only", None, "MLFLOW_TRACKING_URI", "sqlite_read_only"),
    ("tracking_server_down", None, "MLFLOW_TRACKING_URI", "server_down"),
    ("tracking_sqlite_damaged", None, "MLFLOW_TRACKING_URI", "sqlite_damaged"),
]
SKIPS = {
    "gan_cuda": CUDA,
    "evaluate_cuda": CUDA,
    "vae_cuda_3": CUDA_COUNT > 3,
    "ddpm_mps": MPS,
}
# Cases that run the whole `make run` command, not only `genbench validate`.
MAKE_RUN = {
    "image_size_12", "gan_deleted", "gan_null", "lr_nan", "gan_cuda", "folder_corrupt", "seed_octal"
}  # fmt: skip


def write_case(root: Path, change) -> str:
    """Write the case's params.yaml into root; returns the original text (to restore)."""
    original = (root / "params.yaml").read_text()
    if change is None:
        return original
    if isinstance(change, dict):
        params = good_params(root)
        for dotted, value in change.items():
            set_key(params, dotted, value)
    elif change[0] == "drop":
        params = drop_key(good_params(root), change[1])
    elif change[0] == "folder":
        params = set_key(good_params(root), "data.source", "folder")
        set_key(params, "data.folder", image_folder(root, change[1]))
    else:
        (root / "params.yaml").write_bytes(text_case(root, change[1]))
        return original
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return original


def case_env(root: Path, extra) -> dict:
    if isinstance(extra, dict) or extra is None:
        return extra or {}
    if extra == "offline":
        hub = root.parent / "empty-torch-home"
        hub.mkdir(exist_ok=True)
        return {"TORCH_HOME": str(hub), "https_proxy": DEAD_PROXY, "HTTPS_PROXY": DEAD_PROXY}
    if extra == "small_pixel_limit":  # read by sitecustomize.py, below
        site = root.parent / "small-pixel-limit"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(
            "from PIL import Image\nImage.MAX_IMAGE_PIXELS = 500_000\n"
        )
        return {"PYTHONPATH": f"{root / 'src'}{os.pathsep}{site}"}
    if extra == "sqlite_dir":
        return {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'models'}"}
    if extra == "sqlite_read_only":
        db = root.parent / "read-only.db"
        db.write_bytes(b"")
        db.chmod(0o444)
        return {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    if extra == "sqlite_damaged":
        db = root.parent / "damaged.db"
        db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
        return {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    if extra == "server_down":
        return {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    raise ValueError(extra)


@pytest.mark.parametrize(
    ("change", "key", "extra"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_stops_validate_and_touches_nothing(
    request, project, baseline, change, key, extra
):
    case = request.node.callspec.id
    if SKIPS.get(case):
        pytest.skip("this machine has the device")
    original = write_case(project, change)
    try:
        command = "genbench validate --params params.yaml"
        if case in MAKE_RUN:
            command += " && dvc repro"
        result = sh(command, project, case_env(project, extra))
    finally:
        (project / "params.yaml").write_text(original)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert key in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert fingerprint(project) == baseline


def test_table_is_large_enough():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


def test_good_params_pass_and_make_run_is_a_no_op(project, baseline):
    """The control: the restored params validate, and `make run` finds nothing to do."""
    result = sh("genbench validate --params params.yaml && dvc repro", project)
    assert result.returncode == 0, result.stderr
    assert "ok (" in result.stdout and "up to date" in result.stdout
    assert fingerprint(project) == baseline


# Issue 32: every documented way of running a stage runs the same checks first (the validate
# stage, first in the DVC graph; the flow before it starts Prefect). (id, params changes, the
# key the error names, extra environment, the paths to try). The budget and the download are
# checked by the validate stage only (they need torch or the network): `genbench validate`
# passes them, and `dvc repro` stops at the validate stage.
PATH_CASES = [
    ("z_dim_0", {"gan.z_dim": 0}, "gan.z_dim", None, ("dvc repro", "dvc exp run")),
    (
        "folder_missing",
        {"data.source": "folder", "data.folder": "nowhere"},
        "data.folder",
        None,
        ("make flow",),
    ),
    (
        "budget_buys_no_step",
        {"compare.budget": {"unit": "flops", "amount": 1.0e6}},
        "compare.budget.amount",
        None,
        ("dvc repro",),
    ),
    ("mnist_offline", {"data.source": "mnist"}, "data.source", "offline", ("dvc repro",)),
]


def path_command(path: str, change: dict) -> str:
    if path == "dvc repro":
        return "dvc repro"
    if path == "make flow":
        return f"{BIN / 'python'} -m pipelines.run"
    sets = " ".join(f"-S {k}={v}" for k, v in change.items())  # scalars only
    return f"dvc exp run {sets}"


@pytest.mark.parametrize(
    ("change", "key", "extra", "path"),
    [(c[1], c[2], c[3], path) for c in PATH_CASES for path in c[4]],
    ids=[f"{c[0]}-{path.replace(' ', '_')}" for c in PATH_CASES for path in c[4]],
)
def test_every_path_runs_the_checks_before_any_stage(project, baseline, change, key, extra, path):
    """`dvc exp run -S gan.z_dim=0` deleted models/gan-0 and `make flow` with a missing folder
    deleted data/raw before failing; now each path stops first, with one `error:` line naming
    the key, and every output keeps its sha256."""
    original = (project / "params.yaml").read_text()
    if path == "dvc exp run":
        subprocess.run(
            "git add -A && git -c user.email=t@genbench.local -c user.name=t commit -qm base",
            shell=True, cwd=project, check=True, capture_output=True,
        )  # fmt: skip
    else:
        write_case(project, change)
    try:
        result = sh(path_command(path, change), project, case_env(project, extra))
    finally:
        (project / "params.yaml").write_text(original)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    assert result.returncode != 0, result.stdout + result.stderr
    assert len(errors) == 1 and key in errors[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert fingerprint(project) == baseline
