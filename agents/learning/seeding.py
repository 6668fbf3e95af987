"""The one place a run's randomness is seeded (CleanRL's seeding block).

Every random draw of a learner (weight initialisation, exploration and target noise,
replay sampling, day sampling, environment seeds, evolution) comes from the generator
returned here, so a run is a function of its seed and its generator state is all a
checkpoint needs to resume it exactly.
"""

from __future__ import annotations

import torch


def seeded_generator(seed: int) -> torch.Generator:
    """Seed torch's global generator too (for anything outside the learners) and return
    the run's generator."""
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def draw_seed(generator: torch.Generator) -> int:
    """A fresh 31-bit seed (for an environment reset) drawn from ``generator``."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
