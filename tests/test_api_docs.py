"""Every ``python`` code block of ``docs/api.md`` runs, in order, in one namespace."""

import re
from pathlib import Path

import pytest

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(API_DOC.read_text())


def test_the_page_has_its_examples() -> None:
    text = " ".join(python_blocks())
    for call in (
        "run_simulation(",
        "MarketParallelEnv(",
        "MarketVecEnv(",
        "load_actor_policy(",
        "compare_runs(",
        "write_report(",
    ):
        assert call in text, call


@pytest.mark.slow
def test_every_python_block_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("P2PVAR_CACHE", str(tmp_path / "cache"))  # the publications of MarketVecEnv
    namespace: dict[str, object] = {"__name__": "api_docs"}
    for k, block in enumerate(python_blocks()):
        code = compile(block, f"{API_DOC.name}, python block {k + 1}", "exec")
        exec(code, namespace)
    assert (tmp_path / "runs" / "report" / "report.html").is_file()
    assert len(list((tmp_path / "figures").glob("*.png"))) == 6
