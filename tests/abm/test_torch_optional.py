"""Torch is needed to train, not to run a market: nothing outside agents/learning (and its
benchmark, abm/bench/learners.py) imports it, but for the ``torchrl`` extra's modules (the
TorchRL environment, the BenchMARL task and runs: :data:`TORCHRL_EXTRA`), which exist to
hand the market to torch libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Run first in a subprocess: makes ``import torch`` fail as if torch were not installed.
NO_TORCH = (
    "import sys\n"
    "class _NoTorch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'torch':\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, _NoTorch())\n"
)


#: Modules that only the ``torchrl`` extra needs (they import torch, torchrl, BenchMARL).
TORCHRL_EXTRA = ("abm.envs.torchrl_env", "abm.envs.benchmarl_task", "abm.training.benchmarl_run")
SKIPPED = ("agents.learning", "abm.bench.learners", *TORCHRL_EXTRA)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH + code], cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_every_module_outside_the_learners_imports_without_torch() -> None:
    code = (
        "import importlib, pkgutil\n"
        "names = []\n"
        "def walk(name):\n"
        f"    if name in {SKIPPED!r}:\n"
        "        return\n"
        "    mod = importlib.import_module(name)\n"
        "    names.append(name)\n"
        "    for info in pkgutil.iter_modules(getattr(mod, '__path__', [])):\n"
        "        walk(f'{name}.{info.name}')\n"
        "for pkg in ('abm', 'agents', 'dso', 'messaging', 'analysis'):\n"
        "    walk(pkg)\n"
        "print(len(names))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 50  # the walk found the project's modules


def test_learners_without_torch_give_one_line_error() -> None:
    out = _run("import agents.learning.train\n")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last == (
        "agents.learning.errors.LearningError: training needs torch, which is not installed: "
        "pip install -e '.[train]'"
    )
