"""The start of a training run from a behaviour clone of the optimum (``--init clone``).

The optimum's dispatch of every fit day (:mod:`abm.training.demonstrations`) is played
through the run's environment; one actor of the learner's shape is cloned from what the
prosumers observed and the actions that played it (:func:`agents.learning.imitation.
clone_actor`), keeping the epoch whose team of copies has the lowest validation cost; every
actor of the learner then starts from it. ``clone.json`` in the run folder records the fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from abm.output.jsonfile import write_json
from abm.training.demonstrations import record_demonstrations

if TYPE_CHECKING:
    from abm.envs.vec_env import MarketVecEnv
    from agents.learning.checkpoint import Selected
    from agents.learning.train import Algorithm

#: The file of the clone's record in a run folder.
CLONE_FILE = "clone.json"


def start_from_clone(
    env: MarketVecEnv, algorithm: Algorithm, seed: int, out_dir: Path, *, progress: bool
) -> Selected:
    """Clone the optimum on ``env``'s fit days, start ``algorithm``'s actors from the clone
    and write ``out_dir/clone.json``; return the clone's team and validation cost (the run's
    start, a candidate for the exported team)."""
    import torch

    from agents.learning.checkpoint import Selected
    from agents.learning.imitation import CloneConfig, clone_actor, team_of
    from agents.learning.rollout import evaluate_cost
    from agents.learning.seeding import seeded_generator

    demos = record_demonstrations(env, list(env.train_days), progress=progress)
    config = CloneConfig()

    def validation_cost(actor: list[torch.Tensor]) -> float:
        return evaluate_cost(env, team_of(actor, (1, env.n_agents)), env.val_days, seed=0)

    clone = clone_actor(
        demos.obs,
        demos.actions,
        algorithm.actor_hidden,
        config,
        seeded_generator(seed),
        validation_cost,
    )
    algorithm.start_from(clone.actor)
    record = {
        "demonstrated_days": len(demos.days),
        "pairs": len(demos.obs),
        "optimum_cost_eur_per_day": float(demos.cost_eur_per_day.mean()),
        "config": {k: getattr(config, k) for k in ("epochs", "batch_size", "lr", "lr_decay")},
        "epoch_kept": clone.epoch,
        "val_cost_per_epoch": clone.scores,
        "loss_per_epoch": clone.losses,
    }
    write_json(Path(out_dir) / CLONE_FILE, record)
    return Selected(team_of(clone.actor, (1, env.n_agents)), min(clone.scores), 0)
