"""The vectorised market (:class:`abm.envs.vec_env.MarketVecEnv`) as a TorchRL multi-agent
environment (the ``torchrl`` extra: ``pip install -e ".[torchrl]"``).

Batch size: the ``B`` worlds. TorchRL's multi-agent convention: the group ``"prosumers"``
holds each prosumer's ``observation`` (``[B, N, obs_dim]``, the features of
:data:`agents.policy.OBSERVATION_FEATURES`), ``action`` (``[B, N, action_dim]`` in
``[-1, 1]``) and ``reward`` (``[B, N, 1]``, minus its bill); ``"state"`` (``[B, state_dim]``)
is the global state for centralised critics; ``done``, ``terminated`` and ``truncated``
(``[B, 1]``) are the world's. A day's last interval terminates the episode (its bill
values the stored energy used, so nothing follows it); ``truncated`` stays False. All
worlds end together, and a reset restarts every world.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from abm.envs.pettingzoo_env import OBS_BOUND
from abm.envs.vec_env import MarketVecEnv
from abm.errors import ConfigError

#: The agents' group in the TensorDicts (TorchRL's multi-agent convention).
GROUP = "prosumers"


class MarketTorchEnv(EnvBase):
    """``vec``'s worlds as one batched TorchRL environment (see the module docstring).

    ``days``: calendar days, one per world, that every reset plays (held-out evaluation);
    ``None``: each reset draws training days (``vec.train_days``) from the seed set by
    :meth:`set_seed`.
    """

    batch_locked = True

    def __init__(
        self, vec: MarketVecEnv, *, days: Sequence[int] | None = None, seed: int = 0
    ) -> None:
        b, n = vec.n_worlds, vec.n_agents
        super().__init__(batch_size=torch.Size([b]), device="cpu")
        if days is not None and len(days) != b:
            raise ConfigError(f"days has {len(days)} entries for n_worlds={b}")
        self.vec = vec
        self.days = None if days is None else [int(d) for d in days]
        self.group_map = {GROUP: list(vec.prosumer_ids)}
        self._rng = np.random.default_rng(seed)
        agents = (b, n)
        self.full_observation_spec = Composite(
            {
                GROUP: Composite(
                    observation=Bounded(
                        -OBS_BOUND, OBS_BOUND, (*agents, vec.obs_dim), dtype=torch.float32
                    ),
                    shape=agents,
                ),
                "state": Unbounded((b, vec.state_dim), dtype=torch.float32),
            },
            shape=(b,),
        )
        self.full_action_spec = Composite(
            {
                GROUP: Composite(
                    action=Bounded(-1.0, 1.0, (*agents, vec.action_dim), dtype=torch.float32),
                    shape=agents,
                )
            },
            shape=(b,),
        )
        self.full_reward_spec = Composite(
            {GROUP: Composite(reward=Unbounded((*agents, 1), dtype=torch.float32), shape=agents)},
            shape=(b,),
        )
        flag = Categorical(2, (b, 1), dtype=torch.bool)
        self.full_done_spec = Composite(
            done=flag.clone(), terminated=flag.clone(), truncated=flag.clone(), shape=(b,)
        )

    def _set_seed(self, seed: int | None) -> None:
        self._rng = np.random.default_rng(seed)

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: object) -> TensorDict:
        flags = None if tensordict is None else tensordict.get("_reset", None)
        if flags is not None and not bool(flags.all()):
            raise ConfigError("_reset: every world ends with the day; reset them all")
        seed = int(self._rng.integers(2**62))
        obs, state = self.vec.reset(seed, self.days)
        return self._out(obs, state, None, torch.zeros((self.vec.n_worlds, 1), dtype=torch.bool))

    def _step(self, tensordict: TensorDictBase) -> TensorDict:
        actions = tensordict.get((GROUP, "action")).detach().cpu().numpy()
        obs, state, reward, done, _ = self.vec.step(actions)
        return self._out(obs, state, reward, torch.from_numpy(done[:, None]))

    def _out(
        self, obs: np.ndarray, state: np.ndarray, reward: np.ndarray | None, done: torch.Tensor
    ) -> TensorDict:
        """The TensorDict of an observation (and a reward after a step), on the env's device
        (no conversion when TorchRL stores it)."""
        group = TensorDict(
            {"observation": torch.from_numpy(obs)},
            batch_size=obs.shape[:2],
            device=self.device,
        )
        if reward is not None:
            group["reward"] = torch.from_numpy(reward[..., None].astype(np.float32))
        return TensorDict(
            {
                GROUP: group,
                "state": torch.from_numpy(state),
                "done": done,
                "terminated": done.clone(),
                "truncated": torch.zeros_like(done),
            },
            batch_size=self.batch_size,
            device=self.device,
        )
