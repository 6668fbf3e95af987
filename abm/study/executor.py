"""The study executor: many runs, each in its own self-describing folder.

A study is a list of :class:`RunSpec`, each a market simulation (a
:class:`~abm.config.SimConfig`, ``simulate``/``deploy``) or a training run (a
:class:`~abm.training.train_config.TrainRunConfig`, ``p2pvar train``). :func:`execute` runs
them on local worker processes (one BLAS/torch thread each) or on a Ray cluster
(``ray_address``; ``"local"`` starts a local instance). Each run writes into
``OUT/runs/<name>/`` its tables (or its training results), ``config.json`` (config, seed,
package versions, git commit) and, last, ``run.json`` (the spec, start time, wall time,
command line, host): a study started again skips every run that has its ``run.json``.
A run that fails is reported in one line; the others go on.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from abm.config import SimConfig, enum_value
from abm.errors import AbmError, ConfigError
from abm.output.jsonfile import read_json, write_json
from abm.output.out_dir import OutputDirError, prepare_out_dir
from abm.output.provenance import git_commit, to_jsonable
from abm.training.train_config import TrainRunConfig

#: Folder of the runs inside a study folder, and each run's completion marker (written last).
RUNS_DIR = "runs"
RUN_FILE = "run.json"
#: The study folder's own record (study name, command line, outputs written).
STUDY_FILE = "study.json"
#: The scenario a run with ``prosumers`` writes into its folder.
SCENARIO_FILE = "scenario.json"
#: Default number of local worker processes (at most this many, at most the CPUs).
DEFAULT_WORKERS = 2
#: Environment variables that keep numerical libraries at one thread per worker.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class StudyError(AbmError):
    """A study cannot run as asked (one line naming what and why)."""


class Backend(StrEnum):
    """How one run executes: in-process (Mesa), or one process per agent over ipc or tcp."""

    IN_PROCESS = "in-process"
    IPC = "ipc"
    TCP = "tcp"


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: its folder name, config, backend and the study's coordinates.

    ``config``: a simulation (:class:`SimConfig`) or a training run (:class:`TrainRunConfig`,
    in-process only, one torch thread; its folder is ``p2pvar train``'s). ``prosumers``: run
    on the network's default scenario restricted to a seeded subset of this many prosumers
    (written to the run's ``scenario.json``). ``labels``: the values the
    study's tables group the run by (e.g. ``{"pv_scale": 1.5}``).
    """

    name: str
    config: SimConfig | TrainRunConfig
    backend: Backend = Backend.IN_PROCESS
    prosumers: int | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(f"run name={self.name!r} must be letters, digits, '.', '_', '-'")
        object.__setattr__(self, "backend", enum_value(Backend, "backend", self.backend))
        if not isinstance(self.config, SimConfig | TrainRunConfig):
            raise ConfigError(f"run {self.name}: config={self.config!r} is not a run config")
        training = isinstance(self.config, TrainRunConfig)
        if training and (self.backend != Backend.IN_PROCESS or self.prosumers is not None):
            raise ConfigError(
                f"run {self.name}: a training run takes backend={Backend.IN_PROCESS} and no "
                "prosumers (its scenario goes in its config)"
            )
        n = self.prosumers
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"prosumers={n!r} must be a positive integer")

    def sim(self) -> SimConfig:
        """The simulation config of a simulation spec (:class:`StudyError` for training)."""
        if not isinstance(self.config, SimConfig):
            raise StudyError(f"run {self.name}: a training run, not a simulation")
        return self.config

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON data (recorded in ``run.json``)."""
        return dict(to_jsonable(self))


@dataclass
class Outcome:
    """What :func:`execute` did: finished runs' records, runs skipped, failures."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every run finished (now or earlier)."""
        return not self.failed


def run_dir_of(out_dir: Path, spec: RunSpec) -> Path:
    """The folder of ``spec``'s run inside the study folder ``out_dir``."""
    return Path(out_dir) / RUNS_DIR / spec.name


def single_thread() -> None:
    """Keep this process (and the agent processes it starts) at one BLAS/torch thread."""
    for name in THREAD_VARS:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _subset_scenario(network: str, n_prosumers: int, path: Path) -> Path:
    """Write the default scenario of ``network`` with a seeded subset of ``n_prosumers``."""
    from abm.inputs.scenario import ScenarioOptions, save_scenario, scenario_for
    from dso.networks import load_network

    feeder = load_network(network)
    full = len(scenario_for(feeder).prosumers)
    if n_prosumers > full:
        raise ConfigError(f"prosumers={n_prosumers} exceeds the {full} of network {network}")
    options = ScenarioOptions(prosumer_fraction=n_prosumers / full)
    return save_scenario(scenario_for(feeder, options=options), path)


def run_one(spec: RunSpec, run_dir: Path, command_line: Sequence[str]) -> dict[str, Any]:
    """Run ``spec`` into ``run_dir`` (an earlier attempt's files are cleared first) and write
    ``run.json`` last; return its record."""
    started = time.time()
    start_utc = datetime.now(UTC).isoformat(timespec="seconds")
    _fresh(run_dir)
    if isinstance(spec.config, TrainRunConfig):
        _train(spec.config, run_dir)
    else:
        _simulate(spec.config, spec, run_dir)
    record = {
        "spec": spec.to_dict(),
        "complete": True,
        "start_utc": start_utc,
        "wall_s": round(time.time() - started, 3),
        "command_line": list(command_line),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }
    write_json(run_dir / RUN_FILE, record)
    return record


def _simulate(config: SimConfig, spec: RunSpec, run_dir: Path) -> None:
    """``simulate`` (in-process) or ``deploy`` (one process per agent) of ``spec``, whose
    config is ``config``."""
    if spec.prosumers is not None:
        path = _subset_scenario(config.network, spec.prosumers, run_dir / SCENARIO_FILE)
        config = dataclasses.replace(config, scenario=str(path))
    if spec.backend == Backend.IN_PROCESS:
        from abm.sim.simulation import run_simulation

        run_simulation(config, run_dir, progress=False)
    else:
        from abm.deploy.launcher import deploy
        from abm.deploy.spec import DeployOptions, Transport

        deploy(config, DeployOptions(transport=Transport(spec.backend.value)), run_dir)


def _train(config: TrainRunConfig, run_dir: Path) -> None:
    """``p2pvar train`` into ``run_dir`` (empty) with one torch thread, no progress bar."""
    from abm.training.train_run import train_run

    single_thread()  # again: torch is imported now
    train_run(config, run_dir, overwrite=True, progress=False)


def _error_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _local_task(
    spec: RunSpec, run_dir: Path, command_line: Sequence[str]
) -> tuple[dict[str, Any] | None, str]:
    """A worker process's task: ``(record, "")`` or ``(None, the error in one line)``."""
    try:
        return run_one(spec, run_dir, command_line), ""
    except Exception as exc:
        return None, _error_line(exc)


def _ray_task(
    spec: RunSpec, command_line: Sequence[str]
) -> tuple[dict[str, Any] | None, str, dict[str, bytes]]:
    """A Ray task: run into a temporary folder on the node and return its files, so the
    study folder need not be shared between machines (``run.json`` is written by the
    driver, last)."""
    single_thread()
    with tempfile.TemporaryDirectory(prefix="p2pvar-run-") as tmp:
        run_dir = Path(tmp) / spec.name
        try:
            record = run_one(spec, run_dir, command_line)
        except Exception as exc:
            return None, _error_line(exc), {}
        files = {
            str(p.relative_to(run_dir)): p.read_bytes()
            for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != RUN_FILE
        }
    return record, "", files


def _fresh(run_dir: Path) -> None:
    """An empty ``run_dir`` (the study owns ``OUT/runs/``: an earlier attempt is removed)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)


def _unpack(run_dir: Path, files: Mapping[str, bytes], record: dict[str, Any]) -> None:
    _fresh(run_dir)
    for rel, data in files.items():
        path = run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    write_json(run_dir / RUN_FILE, record)


def pending(specs: Sequence[RunSpec], out_dir: Path) -> tuple[list[RunSpec], list[str]]:
    """The specs still to run and the names of those finished earlier (same spec).

    Raises :class:`StudyError` for a finished run whose recorded spec differs."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise StudyError(f"run names must be unique: {', '.join(dup)}")
    todo: list[RunSpec] = []
    done: list[str] = []
    for spec in specs:
        marker = run_dir_of(out_dir, spec) / RUN_FILE
        if not marker.is_file():
            todo.append(spec)
            continue
        recorded = read_json(marker, "run record", StudyError).get("spec")
        if recorded != spec.to_dict():
            raise StudyError(
                f"{marker.parent}: finished with another spec than this study's; "
                "pass --overwrite to start the study afresh, or choose another folder"
            )
        done.append(spec.name)
    return todo, done


def execute(
    specs: Sequence[RunSpec],
    out_dir: Path,
    *,
    workers: int = DEFAULT_WORKERS,
    ray_address: str | None = None,
    progress: bool = True,
    command_line: Sequence[str] | None = None,
) -> Outcome:
    """Run every spec not finished yet; return the records, the skipped and the failed.

    ``workers``: local worker processes (1: in this process); with ``ray_address`` the runs
    go to that Ray cluster (``"local"``: a local instance with ``workers`` CPUs) instead.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} must be a positive integer")
    argv = list(command_line if command_line is not None else sys.argv)
    todo, skipped = pending(specs, out_dir)
    outcome = Outcome(skipped=skipped)
    with tqdm(total=len(todo), desc="runs", unit="run", disable=not progress) as bar:

        def finished(name: str, record: dict[str, Any] | None, error: str) -> None:
            if record is None:
                outcome.failed[name] = error
                tqdm.write(f"run {name} failed: {error}", file=sys.stderr)
            else:
                outcome.records[name] = record
            bar.update(1)
            bar.set_postfix(failed=len(outcome.failed))

        if ray_address is not None:
            _execute_ray(todo, out_dir, ray_address, workers, argv, finished)
        elif workers == 1:
            single_thread()
            for spec in todo:
                finished(spec.name, *_local_task(spec, run_dir_of(out_dir, spec), argv))
        else:
            _execute_pool(todo, out_dir, workers, argv, finished)
    return outcome


Finished = Callable[[str, "dict[str, Any] | None", str], None]


def _execute_pool(
    todo: Iterable[RunSpec], out_dir: Path, workers: int, argv: list[str], finished: Finished
) -> None:
    context = get_context("spawn")  # a fresh interpreter: no inherited threads or sockets
    with ProcessPoolExecutor(workers, mp_context=context, initializer=single_thread) as pool:
        futures: dict[Future[tuple[dict[str, Any] | None, str]], str] = {
            pool.submit(_local_task, spec, run_dir_of(out_dir, spec), argv): spec.name
            for spec in todo
        }
        for future in as_completed(futures):
            try:
                record, error = future.result()
            except Exception as exc:  # the worker process died (e.g. killed for memory)
                record, error = None, _error_line(exc)
            finished(futures[future], record, error)


def _execute_ray(
    todo: list[RunSpec],
    out_dir: Path,
    address: str,
    workers: int,
    argv: list[str],
    finished: Finished,
) -> None:
    try:
        import ray
    except ImportError:
        raise StudyError("--ray needs Ray: pip install 'p2pvar[ray]'") from None
    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {name: "1" for name in THREAD_VARS}}
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env)
        else:
            ray.init(address=address, runtime_env=env)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        refs = {task.remote(spec, argv): spec for spec in todo}
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            spec = refs[ready[0]]
            try:
                record, error, files = ray.get(ready[0])
            except Exception as exc:  # the task or its worker died
                record, error, files = None, _error_line(exc), {}
            if record is not None:
                _unpack(run_dir_of(out_dir, spec), files, record)
            finished(spec.name, record, error)
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------- the study folder
def prepare_study_dir(out_dir: Path, study: str, overwrite: bool) -> bool:
    """Make ``out_dir`` ready for ``study``; return whether it resumes an earlier start.

    A folder holding this study's ``study.json`` is resumed (finished runs are skipped), or
    with ``overwrite`` cleared of the study's runs and outputs; a folder holding another
    study is refused; any other folder goes through :func:`abm.output.out_dir.prepare_out_dir`.
    """
    out_dir = Path(out_dir)
    marker = out_dir / STUDY_FILE
    if marker.is_file():
        doc = read_json(marker, "study file", OutputDirError)
        if doc.get("study") != study:
            raise OutputDirError(
                f"--out {out_dir}: holds the study {doc.get('study')!r}, not {study!r}; "
                "choose another folder"
            )
        if not overwrite:
            return True
        for name in doc.get("outputs", []):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / RUNS_DIR, ignore_errors=True)
        marker.unlink()
    else:
        prepare_out_dir(out_dir, overwrite)
        if (out_dir / RUNS_DIR).exists():
            raise OutputDirError(
                f"--out {out_dir}: holds a {RUNS_DIR}/ folder no study wrote; "
                "move it away or choose another folder"
            )
    write_json(
        marker,
        {
            "study": study,
            "command_line": list(sys.argv),
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "outputs": [],
        },
    )
    return False


def record_outputs(out_dir: Path, outputs: Iterable[Path]) -> None:
    """Add the study's written tables and plots to its ``study.json``."""
    marker = Path(out_dir) / STUDY_FILE
    doc = read_json(marker, "study file", OutputDirError)
    names = set(doc.get("outputs", [])) | {Path(p).name for p in outputs}
    doc["outputs"] = sorted(names)
    write_json(marker, doc)
