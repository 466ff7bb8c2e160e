"""pipelines/ without Prefect: graph order, DVC outcomes, sweep grids, the params section."""

import subprocess
import sys

import networkx as nx
import pytest
import yaml

from genbench.config.orchestration import OrchestrationParams
from genbench.core.errors import ParamsError
from pipelines import grid
from pipelines.graph import GraphError, downstream, read_graph, run_order
from pipelines.repro import (
    Outcome,
    absolute_tracking_uri,
    dvc_env,
    outcome_of,
    repro_command,
    repro_stage,
    tail,
)
from tests.conftest import ROOT


def digraph(upstream: dict[str, tuple[str, ...]]) -> nx.DiGraph:
    """A stage graph as read_graph returns it, from each stage's upstream stages."""
    graph = nx.DiGraph()
    graph.add_nodes_from(upstream)
    graph.add_edges_from((up, name) for name, ups in upstream.items() for up in ups)
    return graph


# A diamond with a side branch, in "dvc.yaml order": c is declared before b.
GRAPH = digraph(
    {
        "fetch": (),
        "prep": ("fetch",),
        "c": ("prep",),
        "b": ("prep",),
        "join": ("b", "c"),
        "side": ("prep",),
    }
)


def assert_upstream_first(graph: nx.DiGraph, order: list[str]) -> None:
    assert len(order) == len(set(order)), order
    for position, name in enumerate(order):
        assert set(graph.predecessors(name)) <= set(order[:position]), (name, order)


def test_every_stage_runs_after_all_its_upstream_stages():
    order = run_order(GRAPH)
    assert sorted(order) == sorted(GRAPH)
    assert_upstream_first(GRAPH, order)


def test_ready_stages_keep_their_declaration_order():
    assert run_order(digraph({"z": (), "a": (), "m": ()})) == ["z", "a", "m"]
    # declared before its upstream stage, it still waits for it
    assert run_order(digraph({"late": ("early",), "early": ()})) == ["early", "late"]
    order = run_order(GRAPH)
    assert order.index("c") < order.index("b")  # both ready after prep: c is declared first


@pytest.mark.parametrize(
    ("targets", "selected"),
    [
        (["b"], {"fetch", "prep", "b"}),
        (["c", "side"], {"fetch", "prep", "c", "side"}),
        (["join"], {"fetch", "prep", "b", "c", "join"}),
        (["fetch"], {"fetch"}),
    ],
)
def test_targets_select_exactly_themselves_and_their_upstream(targets, selected):
    order = run_order(GRAPH, targets)
    assert set(order) == selected
    assert_upstream_first(GRAPH, order)


def test_unknown_target_and_cycle_are_one_line_errors():
    with pytest.raises(GraphError, match=r"stage 'nope' is not in dvc.yaml; stages: fetch, prep"):
        run_order(GRAPH, ["nope"])
    cyclic = digraph({"start": (), "a": ("start", "b"), "b": ("a",), "end": ("b",)})
    with pytest.raises(GraphError, match="cycle through: ") as err:
        run_order(cyclic)
    assert set(str(err.value).split(": ")[-1].split(", ")) == {"a", "b"}
    assert "\n" not in str(err.value)


def test_downstream_is_every_stage_reached_in_declaration_order():
    assert downstream(GRAPH, "c") == ["join"]
    assert downstream(GRAPH, "prep") == ["c", "b", "join", "side"]
    assert downstream(GRAPH, "join") == []
    for name in GRAPH:  # a stage is downstream exactly when it needs name's outputs
        for other in GRAPH:
            reached = other != name and nx.has_path(GRAPH, name, other)
            assert (other in downstream(GRAPH, name)) == reached


def dvc_init(path):
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=path, check=True)


def test_read_graph_expands_foreach_and_points_to_dependencies(tmp_path, monkeypatch):
    """Addresses are relative to the repo, whatever the current directory (DVC's are not)."""
    monkeypatch.chdir(tmp_path.parent)
    dvc_init(tmp_path)
    stages = {
        "make": {"cmd": "echo > a", "outs": ["a"]},
        "use": {
            "foreach": ["x", "y"],
            "do": {"cmd": "echo > ${item}", "deps": ["a"], "outs": ["${item}"]},
        },
        "join": {"cmd": "echo > z", "deps": ["x", "y"], "outs": ["z"]},
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    graph = read_graph(tmp_path)
    assert list(graph) == ["make", "use@x", "use@y", "join"]
    assert set(graph.edges) == {
        ("make", "use@x"), ("make", "use@y"), ("use@x", "join"), ("use@y", "join")
    }  # fmt: skip
    assert run_order(graph) == ["make", "use@x", "use@y", "join"]


def test_read_graph_of_this_repository_runs_every_stage_after_its_dependencies():
    graph = read_graph(ROOT)
    order = run_order(graph)
    assert sorted(order) == sorted(graph) and "preprocess" in graph
    assert "preprocess" in downstream(graph, "download")
    assert_upstream_first(graph, order)


def test_read_graph_of_a_broken_dvc_yaml_is_one_line(tmp_path):
    dvc_init(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages:\n  a: {cmd: [unclosed\n")
    with pytest.raises(GraphError) as err:
        read_graph(tmp_path)
    assert "cannot read the DVC graph" in str(err.value) and "\n" not in str(err.value)


# Writes a line to runs.log (not an output) each time its command really runs.
STAGE = {"cmd": "echo x > out.txt && echo ran >> runs.log", "deps": ["in.txt"], "outs": ["out.txt"]}


@pytest.fixture
def one_stage_repo(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc_init(tmp_path)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"a": STAGE}}))
    (tmp_path / "in.txt").write_text("1")
    return tmp_path


def repro_checked(root) -> Outcome:
    """repro_stage's outcome, after checking it against what DVC did and said."""
    log = root / "runs.log"
    runs = log.read_text().count("ran") if log.exists() else 0
    lines: list[str] = []
    outcome = repro_stage(root, "a", dvc_env(), lines.append)
    ran = (log.read_text().count("ran") if log.exists() else 0) - runs
    assert ran == (outcome is Outcome.RAN), (outcome, lines)
    said = "\n".join(lines)  # DVC's own words, only to cross-check here
    assert ("didn't change, skipping" in said) == (outcome is Outcome.UP_TO_DATE), said
    assert ("is cached - skipping run" in said) == (outcome is Outcome.RESTORED), said
    return outcome


def test_outcomes_follow_dvcs_state(one_stage_repo):
    root = one_stage_repo
    assert repro_checked(root) is Outcome.RAN
    assert repro_checked(root) is Outcome.UP_TO_DATE
    (root / "in.txt").write_text("2")
    assert repro_checked(root) is Outcome.RAN
    (root / "in.txt").write_text("1")  # back to a state the run cache has seen
    assert repro_checked(root) is Outcome.RESTORED
    (root / "out.txt").unlink()  # only the output is gone: checked out of the cache
    assert repro_checked(root) is Outcome.RESTORED
    assert (root / "out.txt").read_text() == "x\n"


def test_a_run_cache_entry_without_its_outputs_runs(one_stage_repo):
    root = one_stage_repo
    assert repro_checked(root) is Outcome.RAN
    (root / "in.txt").write_text("2")
    assert repro_checked(root) is Outcome.RAN
    (root / "in.txt").write_text("1")
    for item in (root / ".dvc" / "cache" / "files").rglob("*"):
        if item.is_file():
            item.unlink()  # the entry for in.txt=1 stays, its output is gone
    assert repro_checked(root) is Outcome.RAN


def test_the_outcome_is_read_from_dvcs_own_words():
    def said(*lines: str) -> Outcome:
        return outcome_of(
            "\n".join(["Verifying data sources in stage: 'a'", *lines]), "train@gan-0"
        )

    assert said("Stage 'train@gan-0' didn't change, skipping") is Outcome.UP_TO_DATE
    cached = "Stage 'train@gan-0' is cached - skipping run, checking out outputs"
    assert said(cached) is Outcome.RESTORED
    assert said("Running stage 'train@gan-0':", "> python stages/train.py") is Outcome.RAN
    assert said(cached, "Running stage 'train@gan-0':") is Outcome.RAN  # the restore failed
    assert said("Stage 'train@gan-1' didn't change, skipping") is Outcome.RAN  # another stage
    assert said() is Outcome.RAN  # nothing said: assume work was done


def test_tail_prefers_the_stages_own_error_line():
    output = "\n".join(
        [
            "Running stage 'train@gan':",
            "> python stages/train.py ...",
            "error: params.yaml: gan.widths: widths has 2 entries",
            "ERROR: failed to reproduce 'train@gan': failed to run: python ..., exited with 2",
        ]
    )
    assert tail(output) == "error: params.yaml: gan.widths: widths has 2 entries"
    assert tail("ERROR: failed to reproduce 'x'") == "ERROR: failed to reproduce 'x'"
    assert tail("a\nb\nc\nd") == "b | c | d" and tail("") == "no output"


def test_repro_command_and_tracking_uri(tmp_path, monkeypatch):
    assert repro_command("train@gan")[-3:] == ["repro", "--single-item", "train@gan"]
    assert repro_command("a", pull=True)[-1] == "--pull"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert absolute_tracking_uri(tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////abs/m.db")
    assert absolute_tracking_uri(tmp_path) == "sqlite:////abs/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://host:5000")
    assert absolute_tracking_uri(tmp_path) == "http://host:5000"


def test_grid_parses_dvc_set_syntax_and_expands_the_product():
    axes = grid.parse_grid(["gan.z_dim=32,64", "ddpm.lr=1e-4,2e-4", "gan.widths=[16],[16,8]"])
    assert [axis.key for axis in axes] == ["gan.z_dim", "ddpm.lr", "gan.widths"]
    assert axes[1].values == (1e-4, 2e-4) and axes[1].texts == ("0.0001", "0.0002")
    assert axes[2].values == ([16], [16, 8]) and axes[2].texts == ("[16]", "[16,8]")
    points = grid.expand(axes)
    assert len(points) == 8
    assert grid.set_options(points[0]) == [
        "-S", "gan.z_dim=32", "-S", "ddpm.lr=0.0001", "-S", "gan.widths=[16]"
    ]  # fmt: skip
    assert grid.describe(points[-1]) == "gan.z_dim=64 ddpm.lr=0.0002 gan.widths=[16,8]"
    assert [p[0][1] for p in grid.expand(grid.parse_grid(["seed=range(0,3)"]))] == [0, 1, 2]
    assert len(grid.expand(grid.parse_grid(["ddpm.sampler=ddim"]))) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["gan.z_dim=[32"], r"sweep 'gan.z_dim=\[32': .* \(syntax: key=v1,v2\)"),
        (["+gan.new=1,2"], "not allowed"),
        (["gan.z_dim=1,2", "gan.z_dim=3"], "gan.z_dim appears twice"),
        ([], "the grid is empty"),
        (["seed=range(0,1000)"], "1000 points > 256"),
    ],
)
def test_bad_grids_are_one_line_errors(overrides, message):
    with pytest.raises(ParamsError, match=message):
        grid.expand(grid.parse_grid(overrides))


def test_check_points_validates_every_point_against_the_schemas():
    params = ROOT / "params.yaml"
    grid.check_points(params, grid.expand(grid.parse_grid(["gan.z_dim=8,16", "seed=1"])))
    with pytest.raises(ParamsError, match=r"with gan.z_dim=0: gan.z_dim = 0: .*greater than"):
        grid.check_points(params, grid.expand(grid.parse_grid(["gan.z_dim=8,0"])))
    with pytest.raises(ParamsError, match="gan.zdim: no such key in params.yaml"):
        grid.check_points(params, grid.expand(grid.parse_grid(["gan.zdim=8"])))


def val_point(gan_fid: float, vae_fid: float) -> dict:
    """What dvc.api.metrics_show gives for one experiment (the parts the sweep reads)."""
    families = {
        name: {
            "scores": {"fid": {"mean": fid - 5}},  # test split: never ranked on
            "val": {"fid": {"mean": fid, "half": 0.5}, "kid_mean": {"mean": 0.1}},
        }
        for name, fid in (("gan", gan_fid), ("vae", vae_fid))
    }
    return {  # compare.json read whole by the sweep's task; the runs as metrics_show gives them
        "metrics/compare.json:": {"families": families, "seeds": [0, 1]},
        "../x/metrics/runs/gan-0.json:scores": {"fid": 1.0},
    }


def test_sweep_table_ranks_on_the_validation_split_only():
    flat = grid.flatten_metrics(val_point(12.5, 30.0), ["fid"])
    assert flat == {"gan val fid": 12.5, "vae val fid": 30.0}  # no test-split number
    rows = [
        {
            "experiment": "a",
            "gan.z_dim": "8",
            **grid.flatten_metrics(val_point(20.0, 3.0), ["fid"]),
        },
        {"experiment": "b", "gan.z_dim": "16", **flat},
        {"experiment": "c", "gan.z_dim": "32"},  # a failed point: last
    ]
    column = grid.rank(rows, ["gan.z_dim"], ["fid"])
    assert column == "gan val fid" and [r["experiment"] for r in rows] == ["b", "a", "c"]
    columns, cells = grid.table(rows)
    assert columns == ["experiment", "gan.z_dim", "gan val fid", "vae val fid"]
    assert cells[2] == ["c", "32", "-", "-"]
    assert grid.markdown(columns, cells).splitlines()[1] == "| --- | --- | --- | --- |"
    higher = [{"x": 1, "gan val recall": 0.2}, {"x": 2, "gan val recall": 0.9}]
    grid.rank(higher, ["gan.lr_g"], ["recall"])
    assert [r["x"] for r in higher] == [2, 1]


def test_orchestration_section_defaults_and_checks():
    params = OrchestrationParams()
    assert params.retries == 1 and params.sweep.grid == [] and params.sweep.metrics
    OrchestrationParams(sweep={"grid": ["gan.z_dim=32,64", "seed=range(0,3)"]})
    for bad in ({"retries": -1}, {"sweep": {"grid": ["z_dim 32"]}}, {"sweep": {"metrics": []}}):
        with pytest.raises(ValueError):
            OrchestrationParams(**bad)
