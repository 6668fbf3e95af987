"""A prosumer agent process imports neither pandapower, Mesa, pandas nor torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from abm.config import SimConfig
from abm.deploy.launcher import prepare
from abm.deploy.spec import DeployOptions

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandapower", "mesa", "pandas", "torch")

#: The code path of ``p2pvar agent --role prosumer``: the CLI's parser, the run spec, the
#: world from the feeder snapshot, the prosumer with its policy.
BUILD_A_PROSUMER = """
import json, sys
from pathlib import Path
from abm.cli.main import build_parser
from abm.deploy.agent_main import build_agent_world, build_prosumer
from abm.deploy.spec import load_run_spec

build_parser()
spec = load_run_spec(Path(sys.argv[1]))
world = build_agent_world(spec)
agent_id = world.prosumer_ids[0]
agent = build_prosumer(spec, world, agent_id, spec.entry(agent_id))
print(json.dumps({"agent": agent.agent_id, "modules": sorted(sys.modules)}))
"""


def test_a_prosumer_process_imports_no_heavy_package(tmp_path: Path) -> None:
    prepared = prepare(SimConfig(), DeployOptions(), tmp_path / "run")
    try:
        out = subprocess.run(
            [sys.executable, "-c", BUILD_A_PROSUMER, str(prepared.spec_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    finally:
        if prepared.tmp_dir is not None:
            shutil.rmtree(prepared.tmp_dir, ignore_errors=True)
    report = json.loads(out.stdout)
    assert report["agent"] == "p01"
    assert "agents.prosumer" in report["modules"] and "zmq" in report["modules"]
    loaded = {m.split(".")[0] for m in report["modules"]}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
