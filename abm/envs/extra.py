"""The check that the ``torchrl`` extra is installed (torch-free, for the commands)."""

from __future__ import annotations

import importlib.util

from abm.errors import ConfigError

#: The packages of the ``torchrl`` extra that the TorchRL environment needs.
TORCHRL_PACKAGES = ("torch", "tensordict", "torchrl")


def require_torchrl(what: str, *, benchmarl: bool = False) -> None:
    """Refuse ``what`` in one line if a package of the ``torchrl`` extra is missing."""
    for name in (*TORCHRL_PACKAGES, *(("benchmarl",) if benchmarl else ())):
        if importlib.util.find_spec(name) is None:
            raise ConfigError(
                f"{what} needs {name}, which is not installed: pip install -e '.[torchrl]'"
            )
