"""Per-prosumer actor files: extraction, numpy forward equal to torch, bad files refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.actor import ActorFileError, load_actor
from agents.learning.checkpoint import RunIdentity, export_actors
from agents.learning.rollout import team_actions
from agents.learning.train import make_algorithm
from tests.agents.learning.conftest import TINY, toy_env


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[torch.Tensor]]:
    """Actor files of a MATD3 team with (deliberately) non-default weights, and the team."""
    env = toy_env()
    learner = make_algorithm("matd3", env, 1, TINY)
    team = learner.policy_team()
    generator = torch.Generator().manual_seed(0)
    team = [t + 0.3 * torch.randn(t.shape, generator=generator) for t in team]
    paths = export_actors(tmp_path_factory.mktemp("actors"), team, RunIdentity.of("matd3", env))
    return paths, team


def test_one_file_per_prosumer(exported: tuple[list[Path], list[torch.Tensor]]) -> None:
    paths, _ = exported
    assert [p.name for p in paths] == [f"{pid}.npz" for pid in toy_env().prosumer_ids]


def test_numpy_forward_equals_torch(exported: tuple[list[Path], list[torch.Tensor]]) -> None:
    paths, team = exported
    env = toy_env()
    obs = torch.rand(64, env.n_agents, env.obs_dim, generator=torch.Generator().manual_seed(1))
    obs = obs * 4.0 - 2.0
    expected = team_actions(team, obs).double().numpy()
    for i, (path, pid) in enumerate(zip(paths, env.prosumer_ids, strict=True)):
        actor = load_actor(path, prosumer_id=pid, network="toy", obs_dim=env.obs_dim)
        got = actor.act(obs[:, i].double().numpy())
        np.testing.assert_allclose(got, expected[:, i], rtol=0, atol=1e-6)
        np.testing.assert_allclose(actor.act(obs[0, i].numpy()), expected[0, i], atol=1e-6)
    assert np.abs(expected).max() > 0.1  # not a trivial all-zero policy


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ({"obs_dim": 15}, "obs_dim is 6, expected 15"),
        ({"prosumer_id": "p02"}, "prosumer_id is 'p01', expected 'p02'"),
        ({"network": "ieee33"}, "network is 'toy', expected 'ieee33'"),
    ],
)
def test_mismatched_actor_file_refused(
    exported: tuple[list[Path], list[torch.Tensor]], expect: dict, message: str
) -> None:
    path = exported[0][0]
    with pytest.raises(ActorFileError, match=rf"p01\.npz: {message}"):
        load_actor(path, **expect)


def test_corrupt_or_truncated_actor_file_refused(
    exported: tuple[list[Path], list[torch.Tensor]], tmp_path: Path
) -> None:
    data = exported[0][0].read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    for path in (truncated, corrupt):
        with pytest.raises(ActorFileError, match=rf"{path.name}: corrupt or truncated"):
            load_actor(path)
    with pytest.raises(ActorFileError, match="actor file not found"):
        load_actor(tmp_path / "none.npz")


def test_actor_file_with_inconsistent_layers_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.npz"
    np.savez(
        path,
        format_version=np.array(1),
        prosumer_id=np.array("p01"),
        network=np.array("toy"),
        obs_dim=np.array(6),
        n_layers=np.array(2),
        w0=np.zeros((6, 8)),
        b0=np.zeros(8),
        w1=np.zeros((5, 4)),
        b1=np.zeros(4),
    )
    with pytest.raises(ActorFileError, match=r"odd\.npz: layer 1 has shapes"):
        load_actor(path)
    np.savez(path, format_version=np.array(7), prosumer_id="p", network="n", obs_dim=1, n_layers=1)
    with pytest.raises(ActorFileError, match="format_version is 7, expected one of 1, 2, 3"):
        load_actor(path)


def test_actor_module_imports_no_heavy_package() -> None:
    code = (
        "import sys, agents.actor; "
        "print([m for m in ('torch', 'pandapower', 'mesa', 'pandas') if m in sys.modules])"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
