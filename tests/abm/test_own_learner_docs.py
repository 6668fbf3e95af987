"""The examples of docs/training-env.md, "Use your own learner": each ``python`` block runs
(in a fresh namespace) and prints what its comment says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "training-env.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def section_blocks() -> list[str]:
    """The python blocks of the section, in order (TorchRL, BenchMARL, PettingZoo)."""
    text = DOC.read_text()
    start = text.index("## Use your own learner")
    end = text.index("\n## ", start + 1)
    return BLOCK.findall(text[start:end])


def run_block(k: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # BenchMARL writes its experiment folder here
    monkeypatch.setenv("P2PVAR_CACHE", str(tmp_path / "cache"))
    code = compile(section_blocks()[k], f"{DOC.name}, own learner block {k + 1}", "exec")
    exec(code, {"__name__": "own_learner_docs"})


def test_the_section_has_three_ten_line_examples() -> None:
    blocks = section_blocks()
    assert [
        ("MarketTorchEnv(" in b, "Experiment(" in b, "MarketParallelEnv(" in b) for b in blocks
    ] == [
        (True, False, False),
        (False, True, False),
        (False, False, True),
    ]
    for block in blocks:
        code = [
            line
            for line in block.splitlines()
            if line and not line.startswith(("from ", "import "))
        ]
        assert len(code) <= 10, block


@pytest.mark.slow
def test_torchrl_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    run_block(0, tmp_path, monkeypatch)
    assert "[2, 24, 32, 1]" in capsys.readouterr().out.replace("torch.Size(", "").replace(")", "")


@pytest.mark.slow
def test_benchmarl_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_block(1, tmp_path, monkeypatch)
    assert list(tmp_path.glob("mappo_market_mlp_*"))  # BenchMARL's experiment folder


def test_pettingzoo_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    run_block(2, tmp_path, monkeypatch)
    out = capsys.readouterr().out
    cost = float(re.search(r"one day with random actions: (-?[\d.]+) EUR", out).group(1))
    assert cost != 0.0
