"""Files changed in place: a model folder's config.json records its weights files' sha256 and
every reader checks them (DVC's status trusts size and mtime); a damaged snapshot in the work
folder is set aside on resume, never copied; a damaged config.json is one line, not a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genbench import cli
from genbench.core import checkpoint
from genbench.core.errors import GenbenchError
from genbench.families.common.model_dir import DIGESTS, load_model, write_model_dir
from genbench.families.gan import family as gan
from genbench.families.gan.params import GanParams
from genbench.training.snapshots import SnapshotKeeper, snapshot_index
from tests.unit.test_snapshots import gan_run

GENBENCH = Path(sys.executable).parent / "genbench"
SNAPSHOT = "snapshots/step-0000001.safetensors"
PARAMS = GanParams(z_dim=4, widths=[8])
CONFIG = {
    "family": "gan",
    "params": PARAMS.model_dump(mode="json"),
    "data": {"channels": 1, "image_size": 8, "source": "digits"},
    "seed": 0,
}


@pytest.fixture
def model(tmp_path) -> Path:
    """A tiny DCGAN's model folder, models/gan-0/, with one snapshot, as training writes it."""
    torch.manual_seed(0)
    net = gan.build_generating(PARAMS, 1, 8)
    curves = tmp_path / "losses.csv"
    curves.write_text("step,loss_d\n1,0.5\n")

    def snapshots(folder: Path) -> None:
        checkpoint.save_weights(net.state_dict(), folder / SNAPSHOT)

    out = tmp_path / "models" / "gan-0"
    write_model_dir(out, net, CONFIG, {"steps": 1}, curves, {"run_id": "r"}, snapshots)
    return out


def zero_in_place(path: Path) -> None:
    """Zero a safetensors file's tensor bytes, keeping its size and mtime (what DVC compares)."""
    before = path.stat()
    header = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    with path.open("r+b") as handle:
        handle.seek(header)
        handle.write(bytes(before.st_size - header))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def one_line(err: GenbenchError) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_the_folder_records_every_weights_files_sha256_and_verifies(model, monkeypatch, capsys):
    digests = json.loads((model / "config.json").read_text())[DIGESTS]
    assert set(digests) == {"weights.safetensors", SNAPSHOT}
    loaded = load_model(model, snapshots=True)
    assert loaded.config == CONFIG  # the digests are the folder's record, not the model's
    monkeypatch.chdir(model.parents[1])
    monkeypatch.setattr(sys, "argv", ["genbench", "verify"])
    cli.main()  # no SystemExit: exit 0
    assert capsys.readouterr().out.splitlines() == [
        "models/gan-0: ok (2 weights files match config.json)"
    ]


def test_weights_zeroed_in_place_are_refused_by_load_and_verify(model, monkeypatch, capsys):
    zero_in_place(model / "weights.safetensors")
    with pytest.raises(GenbenchError) as found:
        load_model(model)
    assert one_line(found.value) == (
        f"{model}/weights.safetensors: sha256 differs from config.json (changed after training); "
        f"run `dvc checkout {model}` or retrain with `dvc repro -f train@gan-0`"
    )
    monkeypatch.chdir(model.parents[1])
    monkeypatch.setattr(sys, "argv", ["genbench", "verify"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    out, err = capsys.readouterr()
    assert stop.value.code == 1
    assert out.splitlines() == [
        "models/gan-0/weights.safetensors: sha256 differs from config.json (changed after "
        "training); run `dvc checkout models/gan-0` or retrain with `dvc repro -f train@gan-0`"
    ]
    assert err.splitlines() == ["error: 1 of 1 model folders failed verification"]


def test_a_zeroed_snapshot_is_refused_where_snapshots_are_read(model):
    zero_in_place(model / SNAPSHOT)
    load_model(model)  # sampling reads the final weights only: they are intact
    with pytest.raises(GenbenchError, match=f"{model}/{SNAPSHOT}: sha256 differs"):
        load_model(model, snapshots=True)  # evaluation: the curve scores the snapshots


def test_a_folder_written_before_digests_still_loads(model):
    config = json.loads((model / "config.json").read_text())
    del config[DIGESTS]
    (model / "config.json").write_text(json.dumps(config))
    assert load_model(model, snapshots=True).config == CONFIG


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"family": "gan", ', "not readable JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({k: v for k, v in CONFIG.items() if k != "data"}), "no 'data' key"),
        (json.dumps({**CONFIG, "family": "flow"}), "family = 'flow': not one of gan, vae, ddpm"),
        (json.dumps({**CONFIG, "family": "vae"}), "params."),  # gan's params are not a vae's
        (json.dumps({**CONFIG, "seed": "zero"}), "seed = 'zero': not an integer"),
        (json.dumps({**CONFIG, DIGESTS: {"/etc/passwd": "0"}}), "sha256 must map files"),
    ],
)
def test_a_damaged_config_is_one_line_naming_it(model, text, said):
    (model / "config.json").write_text(text)
    with pytest.raises(GenbenchError) as found:
        load_model(model)
    line = one_line(found.value)
    assert line.startswith(f"{model}/config.json: ") and said in line, line
    assert line.endswith(f"run `dvc checkout {model}` or retrain with `dvc repro -f train@gan-0`")


def test_sample_on_a_damaged_config_prints_one_error_line(model, tmp_path):
    (model / "config.json").write_text("{not json")
    found = subprocess.run(
        [str(GENBENCH), "sample", "--model", str(model), "--out", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
    )
    assert found.returncode != 0 and "Traceback" not in found.stderr
    (line,) = found.stderr.strip().splitlines()
    assert line.startswith(f"error: {model}/config.json: not readable JSON"), line
    assert not (tmp_path / "s.png").exists()


def test_a_damaged_snapshot_is_set_aside_on_resume_and_made_again(tmp_path, capsys):
    index = snapshot_index([0.34, 0.67, 1.0], 6, 1, 8)  # snapshots at steps 2 and 4
    keeper = SnapshotKeeper.for_run(tmp_path, index)
    gan_run(tmp_path, 6, keeper)
    good = keeper.path(2).read_bytes()
    zero_in_place(keeper.path(2))
    with pytest.raises(checkpoint.CheckpointError, match="step-0000002.safetensors: sha256"):
        keeper.copy_to(tmp_path / "model", index)  # never copied into a model folder
    # another DDP rank only sees it; the main process moves it aside
    assert keeper.missing(6, set_aside=False) == (
        "the snapshot due at step 2 is damaged (sha256 differs from when it was written)"
    )
    assert keeper.path(2).exists()

    result = gan_run(tmp_path, 6, keeper)  # the checkpoint is at step 6: it would be continued
    assert result.stats["resumed_from_step"] == 0
    kept = tmp_path / "step-0000002.safetensors.corrupt-1"
    said = [line for line in capsys.readouterr().out.splitlines() if "is damaged" in line]
    assert len(said) == 1 and f"moved it to {kept}" in said[0] and "step 0" in said[0]
    assert len(kept.read_bytes()) == len(good) and kept.read_bytes() != good  # kept as found
    assert keeper.path(2).read_bytes() == good  # made again, bit for bit
    keeper.copy_to(tmp_path / "model", index)


def test_snapshots_kept_before_digests_are_resumed_if_they_load(tmp_path, capsys):
    index = snapshot_index([0.34, 0.67, 1.0], 6, 1, 8)
    keeper = SnapshotKeeper.for_run(tmp_path, index)
    gan_run(tmp_path, 6, keeper)
    for step in (2, 4):  # records as written before this change: wall_seconds only
        record = keeper.path(step).with_suffix(".json")
        record.write_text(json.dumps({"wall_seconds": 1.0}))
    assert gan_run(tmp_path, 6, keeper).stats["resumed_from_step"] == 6
    keeper.path(4).write_bytes(b"\x00garbage")
    assert gan_run(tmp_path, 6, keeper).stats["resumed_from_step"] == 0
    assert "step 4 is damaged (it cannot be loaded)" in capsys.readouterr().out


def test_the_source_fingerprint_skips_what_is_not_a_module_in_sys_modules(monkeypatch, tmp_path):
    """Cython's compiled modules put a `CythonDotParallel` object, with no __name__, into
    sys.modules (seen on a GPU machine's image): the resume hash must not trip over it."""
    before = checkpoint.source_fingerprint()
    monkeypatch.setitem(sys.modules, "cython.parallel", object())
    assert checkpoint.source_fingerprint() == before
    extra = tmp_path / "stage.py"
    extra.write_text("print('stage')\n")
    assert checkpoint.source_fingerprint(extra) != before  # a file it covers still counts
