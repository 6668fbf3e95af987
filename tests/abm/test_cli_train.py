"""``p2pvar train`` and ``p2pvar evaluate`` end to end on ieee33 with tiny budgets.

Tiny learners (a few updates, 2 training days, 1 validation day) in one process; the
publications of those days are computed once into a temporary cache for the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from abm.cli.main import main
from abm.config import SimConfig
from abm.output.provenance import to_jsonable
from abm.training.train_config import TrainRunConfig
from abm.training.train_run import learner_config
from agents.actor import load_actor
from agents.learners import LEARNERS, learner_class
from agents.learning.train import METRIC_COLUMNS
from tests.abm.test_deploy_equality import assert_same_results
from tests.abm.test_torch_optional import NO_TORCH

ROOT = Path(__file__).resolve().parents[2]
#: The committed checkpoint made with the default budget.
CHECKPOINT = ROOT / "abm" / "data" / "checkpoints" / "ieee33-multi"
#: A tiny run: 3 iterations, 2 updates each after the first rollout, 1 evaluation day.
TINY = (
    "--train-days", "2", "--val-days", "1", "--iterations", "3", "--updates-per-rollout", "2",
    "--learning-starts", "24", "--batch-size", "16", "--eval-every", "1",
    "--checkpoint-every", "2", "--no-progress",
)  # fmt: skip
#: EA-MATD3 with 3 teams beside the learner, one world each.
TINY_EA = ("--algo", "ea-matd3", "--population", "3", "--worlds", "4")


@pytest.fixture(scope="module", autouse=True)
def publication_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every run of this module computes its days' publications into one temporary cache."""
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("P2PVAR_CACHE", str(tmp_path_factory.mktemp("p2pvar_cache")))
        yield


def _args(algo: str) -> list[str]:
    if algo == "ea-matd3":
        return [*TINY_EA, *TINY]
    return ["--algo", algo, "--worlds", "2", *TINY]


def _train(out: Path, *extra: str, algo: str = "ea-matd3") -> int:
    return main(["train", *_args(algo), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def ea_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny EA-MATD3 run."""
    out = tmp_path_factory.mktemp("ea") / "run"
    assert _train(out) == 0
    return out


def _metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv")


def _scalars(out: Path, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a TensorBoard scalar of the run in ``out``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _one_line_error(capsys: pytest.CaptureFixture, code: int, *parts: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pvar: error: "), err
    for part in parts:
        assert part in lines[0], lines[0]


def test_every_registered_learner_is_its_class() -> None:
    for name in LEARNERS:
        cls = learner_class(name)
        assert cls.name == name and set(cls.config_class.SETTINGS) >= {"batch_size"}


def _check_run(out: Path, algo: str) -> None:
    metrics = _metrics(out)
    assert list(metrics.columns) == list(METRIC_COLUMNS)
    assert metrics["iteration"].tolist() == [1, 2, 3]
    assert metrics["val_cost"].notna().all()  # evaluated every iteration
    assert metrics["critic_loss"].iloc[1:].notna().all()  # updates after the first rollout
    assert (metrics["coverage"] > 0).all()
    if algo == "ea-matd3":
        assert metrics[["fitness_best", "fitness_mean", "diversity"]].notna().all().all()
    else:
        assert metrics["fitness_best"].isna().all()
    logged = _scalars(out, "val_cost")
    assert [step for step, _ in logged] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in logged], metrics["val_cost"], rtol=1e-6)
    doc = json.loads((out / "config.json").read_text())
    assert doc["config"]["algo"] == algo and doc["seed"] == 0 and doc["command"] == "train"
    assert doc["versions"]["torch"] != "not installed" and doc["git_commit"]
    assert doc["learner"]  # the resolved learner settings
    actors = sorted((out / "actors").glob("*.npz"))
    assert len(actors) == 32
    for path in actors:
        assert load_actor(path, prosumer_id=path.stem, network="ieee33").prosumer_id == path.stem
    assert (out / "checkpoint.pt").is_file()


def test_ea_matd3_run_writes_metrics_tensorboard_config_and_actors(ea_run: Path) -> None:
    _check_run(ea_run, "ea-matd3")
    actors = [load_actor(path) for path in (ea_run / "actors").glob("*.npz")]
    assert {(a.base_policy, a.residual_scale) for a in actors} == {("tou", 0.1)}


def _check_summary(out: Path) -> dict:
    """``summary.json`` of a run on one validation day: the exported team's cost on it equals
    the run's best ``val_cost`` (the learners' evaluation, another code path) to 1e-6."""
    summary = json.loads((out / "summary.json").read_text())
    best = _metrics(out)["val_cost"].min()
    validation = summary["validation"]
    assert validation["policy"]["cost_eur"] == pytest.approx(best, rel=1e-6)
    assert summary["curve"]["val_cost_best"] == pytest.approx(best, rel=1e-12)
    assert validation["days"] == 1 and "test" not in summary  # no --test-days: none read
    for policy in ("policy", "rule", "tou"):
        assert set(validation[policy]) == {
            "cost_eur", "cost_eur_per_day", "dso_net_eur", "dso_net_min_interval_eur",
            "voltage_violations",
        }  # fmt: skip
        assert validation[policy]["cost_eur_per_day"] == [validation[policy]["cost_eur"]]
    assert validation["tou"]["cost_eur"] < validation["rule"]["cost_eur"]  # the stronger one
    return summary


def test_run_summary_holds_the_team_and_both_baselines(ea_run: Path) -> None:
    summary = _check_summary(ea_run)
    assert summary["setup"]["base_policy"] == "tou"
    # a residual team started near zero: within 1 % of the ToU rule it corrects
    validation = summary["validation"]
    assert validation["policy"]["cost_eur"] == pytest.approx(
        validation["tou"]["cost_eur"], rel=0.01
    )


def test_plain_policy_with_empty_base_policy(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    assert _train(out, "--base-policy", "", algo="matd3") == 0
    actors = [load_actor(path) for path in (out / "actors").glob("*.npz")]
    assert len(actors) == 32 and {a.base_policy for a in actors} == {""}
    doc = json.loads((out / "config.json").read_text())
    assert doc["config"]["base_policy"] == ""
    assert _check_summary(out)["setup"]["base_policy"] == ""


def test_defaults_are_the_committed_checkpoints_run_but_for_the_objective() -> None:
    """``p2pvar train`` with its defaults makes the run of the committed checkpoint (same
    environment, budget and resolved learner settings as its ``summary.json``) but for what
    came after it: the critics' team objective (it learned each prosumer's own reward) and
    issue 23's protocol (it was evaluated on the test days; its README says so)."""
    committed = json.loads((CHECKPOINT / "summary.json").read_text())
    setup, default = committed["setup"], TrainRunConfig()
    assert (str(default.algo), default.seed) == (committed["algo"], committed["seed"])
    assert (default.sim.network, str(default.sim.market), default.worlds) == (
        setup["network"],
        setup["market"],
        setup["n_worlds"],
    )
    assert (default.base_policy, default.residual_scale) == ("tou", 0.1)
    assert (default.base_policy, default.residual_scale) == (
        setup["base_policy"],
        setup["residual_scale"],
    )
    assert (default.iterations, default.eval_every) == (setup["iterations"], setup["eval_every"])
    assert default.sim == SimConfig()  # the whole market at its defaults, as trained then
    assert default.train_days is None and default.val_days is None
    resolved = to_jsonable(learner_config(default))
    assert resolved["learner"].pop("objective") == "team"
    assert resolved == committed["learner"]
    assert committed["learner"]["learner"]["updates_per_rollout"] == 50
    assert committed["learner"]["learner"]["actor_output_init"] == 0.01
    actor = load_actor(CHECKPOINT / "actors" / "p01.npz")
    assert (actor.base_policy, actor.residual_scale) == ("tou", 0.1)


@pytest.mark.parametrize("algo", ["matd3", pytest.param("maddpg", marks=pytest.mark.slow), "itd3"])
def test_other_learners_run(tmp_path: Path, algo: str) -> None:
    assert _train(tmp_path / "run", "--no-summary", algo=algo) == 0
    _check_run(tmp_path / "run", algo)


def test_time_and_step_budgets_stop_the_run_early(tmp_path: Path) -> None:
    timed = tmp_path / "timed"
    assert _train(timed, "--minutes", "1e-6", "--no-summary", algo="matd3") == 0
    assert _metrics(timed)["iteration"].tolist() == [1]  # evaluated, checkpointed, exported
    assert _metrics(timed)["val_cost"].notna().all() and (timed / "actors").is_dir()
    assert _train(timed, "--minutes", "1e-6", "--no-summary", "--resume", algo="matd3") == 0
    assert _metrics(timed)["iteration"].tolist() == [1]  # the time is up: nothing more
    stepped = tmp_path / "stepped"
    # 48 steps an iteration
    assert _train(stepped, "--env-steps", "50", "--no-summary", algo="matd3") == 0
    assert _metrics(stepped)["env_steps"].tolist() == [48, 96]


def test_resume_after_interruption_equals_uninterrupted_run(
    tmp_path: Path, ea_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agents.learning.train as loop

    save = loop.save_checkpoint
    calls = []

    def interrupted(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C after iteration 3, before its checkpoint
            raise KeyboardInterrupt
        save(*args, **kwargs)  # type: ignore[arg-type]

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(loop, "save_checkpoint", interrupted)
        assert _train(out) == 130
    assert _metrics(out)["iteration"].tolist() == [1, 2]
    assert [step for step, _ in _scalars(out, "val_cost")] == [1, 2, 3]
    assert not (out / "actors").exists()
    assert _train(out, "--resume") == 0
    columns = [c for c in METRIC_COLUMNS if c != "wall_s"]
    pd.testing.assert_frame_equal(_metrics(out)[columns], _metrics(ea_run)[columns])
    for path in sorted((ea_run / "actors").glob("*.npz")):
        with np.load(path) as want, np.load(out / "actors" / path.name) as got:
            for key in want.files:
                np.testing.assert_array_equal(got[key], want[key])
    # TensorBoard: step 3 logged before the interruption was replaced on resume
    assert [step for step, _ in _scalars(out, "val_cost")] == [1, 2, 3]


def test_resume_refuses_other_settings_and_missing_run(
    tmp_path: Path, ea_run: Path, capsys: pytest.CaptureFixture
) -> None:
    code = _train(ea_run, "--resume", "--seed", "1")
    _one_line_error(capsys, code, "config.json has seed=0, this run seed=1")
    code = _train(tmp_path / "empty", "--resume")
    _one_line_error(capsys, code, "checkpoint.pt not found")


def test_rerun_into_an_earlier_run_refused(ea_run: Path, capsys: pytest.CaptureFixture) -> None:
    _one_line_error(capsys, _train(ea_run), "holds an earlier run's results", "--overwrite")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worlds", "5"], "worlds=5 must be a multiple of population + 1 = 4"),
        (["--algo", "matd3", "--population", "4"], "population=4 is not a setting of matd3"),
        (["--val-days", "100"], "val_days=100 must be <= 58"),
        (["--minutes", "0"], "minutes=0.0 must be a number > 0"),
        (["--iterations", "0"], "iterations=0 must be an integer >= 1"),
        (["--network", "nowhere"], "nowhere"),
        (["--base-policy", "greedy"], "base_policy='greedy': expected one of ('', 'rule', 'tou')"),
        (["--residual-scale", "0"], "residual_scale=0.0: must be a positive number"),
    ],
)
def test_bad_values_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    code = main(["train", *TINY_EA, *TINY, *args, "--out", str(tmp_path / "run")])
    _one_line_error(capsys, code, message)


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_train_without_torch_says_to_install_the_extra(tmp_path: Path) -> None:
    code = f"from abm.cli.main import main\nmain(['train', '--out', {str(tmp_path / 'run')!r}])\n"
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH + code], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.stderr.strip() == (
        "p2pvar: error: training needs torch, which is not installed: pip install -e '.[train]'"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a full-day run in a subprocess
def test_evaluate_equals_simulate_with_the_checkpoint_without_torch(
    tmp_path: Path, ea_run: Path
) -> None:
    evaluate = (
        "from abm.cli.main import main\n"
        f"code = main(['evaluate', '--checkpoint', {str(ea_run)!r}, '--n-days', '1', "
        "'--days', 'validation', "
        f"'--out', {str(tmp_path / 'eval')!r}, '--no-progress'])\n"
        "import sys\n"
        "assert 'torch' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH + evaluate], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    simulate = ["simulate", "--policy", f"checkpoint:{ea_run}", "--day-set", "validation"]
    assert main([*simulate, "--days", "1", "--out", str(tmp_path / "sim"), "--no-progress"]) == 0
    assert_same_results(tmp_path / "sim", tmp_path / "eval")
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["intervals"] == 24
    # the run's evaluation of the exported team (vectorised env, same actors, same day) agrees
    val_cost = _metrics(ea_run)["val_cost"].min()
    assert summary["prosumer_cost_eur"] == pytest.approx(val_cost, rel=1e-6)


def test_evaluate_refuses_a_folder_without_actors(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["evaluate", "--checkpoint", str(tmp_path), "--n-days", "1", "--no-progress"])
    _one_line_error(capsys, code, "actor file not found")
