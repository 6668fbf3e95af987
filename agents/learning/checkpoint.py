"""Trainer checkpoints and the per-prosumer actor files exported from them.

A checkpoint (``torch.save`` of plain containers, loaded with ``weights_only=True``) holds a
format version, the run's identity (algorithm, network, prosumer ids, sizes), the number
of finished iterations, the algorithm's state (networks, optimisers, population, generator
state, optionally the replay buffer) and the metrics rows so far. A missing, corrupt,
truncated or mismatched file raises :class:`CheckpointError` naming the file and the
mismatch. Actor files are described in :mod:`agents.actor`.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from agents.actor import NumpyActor, save_actor
from agents.learning.env_protocol import VecMarketEnv
from agents.learning.errors import CheckpointError
from agents.learning.networks import Params

#: Version of the checkpoint layout; bumped on any incompatible change (2: the shared-trunk
#: critics' first head layers stored as one wide layer per twin; 3: the team selected on
#: the validation days, and the observation of actor format 3).
CHECKPOINT_FORMAT_VERSION = 3


@dataclass(frozen=True)
class RunIdentity:
    """What a checkpoint must match to be resumed or exported for a market."""

    algo: str
    network: str
    prosumer_ids: tuple[str, ...]
    obs_dim: int
    state_dim: int
    action_dim: int
    base_policy: str = ""
    residual_scale: float = 1.0

    @classmethod
    def of(cls, algo: str, env: VecMarketEnv) -> RunIdentity:
        """The identity of training ``algo`` on ``env``."""
        return cls(
            algo=algo,
            network=env.network,
            prosumer_ids=tuple(env.prosumer_ids),
            obs_dim=env.obs_dim,
            state_dim=env.state_dim,
            action_dim=env.action_dim,
            base_policy=str(env.base_policy),  # a plain str: checkpoints load weights-only
            residual_scale=env.residual_scale,
        )


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    iteration: int
    algorithm: dict[str, Any]
    metrics: list[dict[str, float]]
    selected: Selected | None


@dataclass(frozen=True)
class Selected:
    """The team with the lowest validation cost so far: the one exported."""

    team: Params
    val_cost: float
    iteration: int


def save_checkpoint(
    path: Path,
    identity: RunIdentity,
    iteration: int,
    algorithm: dict[str, Any],
    metrics: list[dict[str, float]],
    selected: Selected | None,
) -> None:
    """Write the checkpoint atomically (a temporary file renamed over ``path``)."""
    payload = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "identity": asdict(identity),
        "iteration": iteration,
        "algorithm": algorithm,
        "metrics": metrics,
        "selected": None if selected is None else asdict(selected),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, expected: RunIdentity) -> Checkpoint:
    """Read the checkpoint at ``path`` and check it belongs to the run ``expected``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({reason})") from None
    if not isinstance(payload, dict) or not {"format_version", "identity"} <= payload.keys():
        raise CheckpointError(f"{path}: not a p2pvar checkpoint")
    if payload["format_version"] != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version is {payload['format_version']!r}, "
            f"expected {CHECKPOINT_FORMAT_VERSION}"
        )
    found = payload["identity"]
    if not isinstance(found, dict):
        raise CheckpointError(f"{path}: not a p2pvar checkpoint (identity is {_short(found)})")
    for name, want in asdict(expected).items():
        got = found.get(name)
        got = tuple(got) if isinstance(got, list) else got
        if got != want:
            raise CheckpointError(f"{path}: {name} is {_short(got)}, expected {_short(want)}")
    selected = payload.get("selected")
    return Checkpoint(
        int(payload["iteration"]),
        payload["algorithm"],
        payload["metrics"],
        None if selected is None else Selected(**selected),
    )


def export_actors(directory: Path, team: Params, identity: RunIdentity) -> list[Path]:
    """One actor file per prosumer (``<directory>/<prosumer_id>.npz``) from a team
    ``[1, N, ...]`` (weights and biases interleaved)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights, biases = team[0::2], team[1::2]
    paths = []
    for i, pid in enumerate(identity.prosumer_ids):
        actor = NumpyActor(
            prosumer_id=pid,
            network=identity.network,
            obs_dim=identity.obs_dim,
            weights=tuple(w[0, i].numpy() for w in weights),
            biases=tuple(b[0, i].numpy() for b in biases),
            base_policy=identity.base_policy,
            residual_scale=identity.residual_scale,
        )
        path = directory / f"{pid}.npz"
        save_actor(path, actor)
        paths.append(path)
    return paths


def _short(value: object) -> str:
    """``repr`` of a value, shortened for a one-line message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
