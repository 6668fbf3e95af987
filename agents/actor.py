"""One prosumer's trained actor: the torch-free file format and its numpy forward pass.

This is the only learning code a prosumer process loads, so it imports numpy and nothing
heavier (a test checks ``sys.modules``). An actor file is an ``.npz`` archive (no pickle) with

- ``format_version`` (int, :data:`ACTOR_FORMAT_VERSION`), ``prosumer_id`` (str),
  ``network`` (str, the feeder it was trained on), ``obs_dim`` (int), ``n_layers`` (int);
- ``w0, b0, w1, b1, ...``: layer ``k`` maps ``x`` to ``x @ wk + bk`` (``wk`` is
  ``(in, out)``), ReLU between layers and ``tanh`` after the last, so outputs lie in
  ``[-1, 1]`` (:data:`agents.policy.ACTION_DIM` of them);
- ``base_policy`` (str) and ``residual_scale`` (float), format 2: with a base policy
  (``rule`` or ``tou``, :data:`BASE_POLICIES`) the actor is a residual policy: the action is
  :func:`residual_action` of the base policy's action on the same observation and the
  actor's output; with ``""`` (and in format 1 files) it is the actor's output itself.

The observation an actor reads is the first ``obs_dim`` features of
:data:`agents.policy.OBSERVATION_FEATURES`: format 3 files read all :data:`OBS_DIM` (the
record's features and the prosumer's outlook: its sizes, own forecasts and tariff ahead);
format 1 and 2 files read their own :data:`agents.policy.BASE_OBS_DIM`, the record's alone,
which are unchanged as the first features of format 3 (:data:`READABLE_OBS_DIMS`).

Training writes one file per prosumer (``agents.learning.checkpoint.export_actors``), named
``<prosumer_id>.npz``; ``agents.policy_registry.load_actor_policy`` turns a prosumer's file
into its policy (``--policy checkpoint:DIR``).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.errors import AgentError
from agents.outlook import ProsumerOutlook
from agents.policy import ACTION_DIM, BASE_OBS_DIM, OBS_DIM, Observation, Policy

#: Version of the actor file layout; bumped on any incompatible change (format 1 files,
#: without a base policy, and format 2 files are still read).
ACTOR_FORMAT_VERSION = 3
#: The observation width a file of each format version reads.
READABLE_OBS_DIMS = {1: BASE_OBS_DIM, 2: BASE_OBS_DIM, ACTOR_FORMAT_VERSION: OBS_DIM}
#: Base policies a residual actor may correct (``""``: none, the actor acts alone).
BASE_POLICIES = ("", "rule", "tou")


class ActorFileError(AgentError):
    """An actor file is missing, corrupt, truncated or does not match what was expected."""


@dataclass(frozen=True)
class NumpyActor:
    """A feed-forward actor: ReLU hidden layers, ``tanh`` output."""

    prosumer_id: str
    network: str
    obs_dim: int
    weights: tuple[np.ndarray, ...]  # layer k: (in, out)
    biases: tuple[np.ndarray, ...]  # layer k: (out,)
    base_policy: str = ""
    """Base policy whose action the output corrects (:data:`BASE_POLICIES`)."""
    residual_scale: float = 1.0
    """Weight of the output added to the base policy's action."""
    format_version: int = ACTOR_FORMAT_VERSION
    """The version of the file it was read from (:func:`save_actor` writes the current)."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions in ``[-1, 1]`` for an observation ``(obs_dim,)`` or a batch ``(.., obs_dim)``."""
        h = np.asarray(obs, dtype=np.float64)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            h = np.tanh(h) if k == last else np.maximum(h, 0.0)
        return h


def save_actor(path: Path, actor: NumpyActor) -> None:
    """Write ``actor`` as an actor file at ``path`` (an ``.npz`` archive)."""
    arrays: dict[str, Any] = {
        "format_version": np.array(ACTOR_FORMAT_VERSION),
        "prosumer_id": np.array(actor.prosumer_id),
        "network": np.array(actor.network),
        "obs_dim": np.array(actor.obs_dim),
        "n_layers": np.array(len(actor.weights)),
        "base_policy": np.array(actor.base_policy),
        "residual_scale": np.array(actor.residual_scale),
    }
    for k, (w, b) in enumerate(zip(actor.weights, actor.biases, strict=True)):
        arrays[f"w{k}"] = np.asarray(w, dtype=np.float32)
        arrays[f"b{k}"] = np.asarray(b, dtype=np.float32)
    with Path(path).open("wb") as f:
        np.savez(f, **arrays)


def load_actor(
    path: Path,
    *,
    prosumer_id: str | None = None,
    network: str | None = None,
    obs_dim: int | None = None,
) -> NumpyActor:
    """Read the actor file at ``path``; each given expectation must match the file.

    Raises :class:`ActorFileError` (one line naming the file and the problem) for a missing,
    corrupt, truncated or mismatched file.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ActorFileError(f"{path}: actor file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ActorFileError(f"{path}: corrupt or truncated actor file ({exc})") from None
    actor = _actor_from_arrays(path, raw)
    expected = {"prosumer_id": prosumer_id, "network": network, "obs_dim": obs_dim}
    for field, want in expected.items():
        got = getattr(actor, field)
        if want is not None and got != want:
            raise ActorFileError(f"{path}: {field} is {got!r}, expected {want!r}")
    return actor


def _actor_from_arrays(path: Path, raw: dict[str, np.ndarray]) -> NumpyActor:
    """Check the archive's fields and layer shapes, and build the actor."""
    for key in ("format_version", "prosumer_id", "network", "obs_dim", "n_layers"):
        if key not in raw:
            raise ActorFileError(f"{path}: not an actor file (no field {key!r})")
    version = int(raw["format_version"])
    if version not in READABLE_OBS_DIMS:
        raise ActorFileError(
            f"{path}: format_version is {version}, expected one of "
            f"{', '.join(map(str, READABLE_OBS_DIMS))}"
        )
    base_policy, residual_scale = "", 1.0
    if version >= 2:
        for key in ("base_policy", "residual_scale"):
            if key not in raw:
                raise ActorFileError(f"{path}: not an actor file (no field {key!r})")
        base_policy, residual_scale = str(raw["base_policy"]), float(raw["residual_scale"])
        if base_policy not in BASE_POLICIES or not np.isfinite(residual_scale):
            raise ActorFileError(
                f"{path}: base_policy {base_policy!r} / residual_scale {residual_scale}: "
                f"expected one of {BASE_POLICIES} and a finite number"
            )
    n_layers = int(raw["n_layers"])
    missing = [f"{p}{k}" for k in range(n_layers) for p in "wb" if f"{p}{k}" not in raw]
    if n_layers < 1 or missing:
        raise ActorFileError(f"{path}: layer arrays missing ({missing or 'n_layers < 1'})")
    weights = tuple(raw[f"w{k}"].astype(np.float64) for k in range(n_layers))
    biases = tuple(raw[f"b{k}"].astype(np.float64) for k in range(n_layers))
    obs_dim = int(raw["obs_dim"])
    width = obs_dim
    for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if w.ndim != 2 or w.shape[0] != width or b.shape != (w.shape[1],):
            raise ActorFileError(
                f"{path}: layer {k} has shapes w{w.shape} b{b.shape}, expected w({width}, *)"
            )
        width = w.shape[1]
    return NumpyActor(
        format_version=version,
        prosumer_id=str(raw["prosumer_id"]),
        network=str(raw["network"]),
        obs_dim=obs_dim,
        weights=weights,
        biases=biases,
        base_policy=base_policy,
        residual_scale=residual_scale,
    )


def residual_action(base: np.ndarray, output: np.ndarray, scale: float) -> np.ndarray:
    """A residual policy's action: ``clip(base + scale * output, -1, 1)`` (numpy arrays of
    any matching shape; the vectorised training environment calls it too)."""
    return np.clip(base + scale * output, -1.0, 1.0)


@dataclass(frozen=True)
class ActorPolicy:
    """A prosumer's policy from its own actor: the actor's output on the observation vector,
    added to ``base``'s action on the same observation for a residual actor. An actor that
    reads :data:`OBS_DIM` features needs the prosumer's ``outlook``; one that reads
    :data:`BASE_OBS_DIM` (format 1 and 2) sees the record's features alone."""

    actor: NumpyActor
    base: Policy | None = None
    outlook: ProsumerOutlook | None = None

    def __post_init__(self) -> None:
        if self.actor.obs_dim == OBS_DIM and self.outlook is None:
            raise ActorFileError(
                f"actor of {self.actor.prosumer_id}: reads the outlook features "
                f"(obs_dim {OBS_DIM}), and no outlook was given"
            )

    def act(self, obs: Observation) -> np.ndarray:
        """The action on ``obs`` (float32)."""
        ahead = None
        if self.actor.obs_dim == OBS_DIM and self.outlook is not None:
            ahead = self.outlook.at(obs)
        output = self.actor.act(obs.to_vector(ahead))
        if self.base is not None:
            output = residual_action(self.base.act(obs), output, self.actor.residual_scale)
        return output.astype(np.float32)


def actor_path(directory: Path | str, prosumer_id: str) -> Path:
    """The actor file of ``prosumer_id`` in ``directory`` (a training run's ``actors/``
    folder, or the run folder itself when it holds one)."""
    directory = Path(directory)
    if (directory / "actors").is_dir():
        directory = directory / "actors"
    return directory / f"{prosumer_id}.npz"


def load_prosumer_actor(directory: Path | str, prosumer_id: str, network: str) -> NumpyActor:
    """The actor of ``prosumer_id`` from its own file in ``directory`` (only that file is read);
    the file must belong to that prosumer and network, read the observation width of its
    format (:data:`READABLE_OBS_DIMS`) and give :data:`ACTION_DIM` actions, else
    :class:`ActorFileError`. Its policy, a residual actor's base policy included:
    ``agents.policy_registry.load_actor_policy``."""
    path = actor_path(directory, prosumer_id)
    actor = load_actor(path, prosumer_id=prosumer_id, network=network)
    expected = READABLE_OBS_DIMS[actor.format_version]
    if actor.obs_dim != expected:
        raise ActorFileError(f"{path}: obs_dim is {actor.obs_dim}, expected {expected}")
    n_actions = actor.weights[-1].shape[1]
    if n_actions != ACTION_DIM:
        raise ActorFileError(f"{path}: the actor gives {n_actions} actions, expected {ACTION_DIM}")
    return actor
