"""Start, watch and stop every process of a deployment on this host; merge the results.

:func:`prepare` resolves a :class:`SimConfig` and :class:`DeployOptions` into a run spec
file (and a feeder snapshot, endpoints, keys, per-agent policies and hosts).
:class:`Deployment` starts the DSO and every prosumer as separate processes (each in its own
process group, with a parent-death signal), watches them, can kill and restart single
agents (tests), and on any way out — normal end, error, Ctrl-C, SIGTERM — terminates every
process it started (SIGTERM, then SIGKILL after :data:`TERM_GRACE_S`) and removes its ipc
directory. :func:`deploy` is the whole run as ``p2pvar deploy`` does it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd
from tqdm import tqdm

from abm.config import SimConfig
from abm.deploy.agent_main import SPAWN_NS_ENV
from abm.deploy.errors import DeployError, MarketDidNotRun, RunIncomplete, RunSpecError
from abm.deploy.feeder_file import save_feeder
from abm.deploy.hosts import HostsFile, load_hosts
from abm.deploy.merge import Merged, merge_records
from abm.deploy.policies import check_policy_spec
from abm.deploy.records import read_records
from abm.deploy.spec import (
    CLOSE_TIMEOUT_MS,
    DSO_ID,
    LOCAL_HOST,
    AgentEntry,
    DeployOptions,
    Fault,
    Role,
    RunSpec,
    load_run_spec,
    save_run_spec,
)
from abm.inputs.run_inputs import RunInputs, build_run_inputs
from abm.inputs.scenario import scenario_to_dict
from abm.output.jsonfile import write_json
from abm.output.provenance import write_run_config
from abm.output.results import write_tables
from messaging.endpoints import LOOPBACK_HOST, RelayEndpoints
from messaging.security import init_keystore

#: Seconds between SIGTERM and SIGKILL when stopping processes.
TERM_GRACE_S = 3.0
#: Seconds between two looks at the processes while a run goes on.
WATCH_S = 0.1
#: Slack added to the run's worst-case duration before the launcher gives up, s.
RUN_SLACK_S = 60.0
#: Thread limits for prosumer processes (33-161 processes share a few cores). The DSO keeps
#: the launcher's environment: its floating-point results depend on the BLAS thread count,
#: which must match the in-process backend's for identical results.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
PR_SET_PDEATHSIG = 1
#: The market ran only if at least this share of prosumer-intervals took part; below it
#: ``deploy`` writes its results and fails with :class:`MarketDidNotRun`.
MIN_PARTICIPATION = 0.5


@dataclass(frozen=True)
class Prepared:
    """A prepared run: its spec, spec file, world and the temporary directory to remove."""

    spec: RunSpec
    spec_path: Path
    world: RunInputs
    out_dir: Path
    tmp_dir: Path | None


def _free_ports(host: str, n: int) -> list[int]:
    """``n`` currently free tcp ports on ``host`` (the OS picks them)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]


def _policies(options: DeployOptions, config: SimConfig, ids: tuple[str, ...]) -> dict[str, str]:
    specs: dict[str, str] = {pid: config.policy for pid in ids}
    if options.policies is None:
        return specs
    path = Path(options.policies)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunSpecError(f"policies file {path}: cannot read JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RunSpecError(f"policies file {path}: must map prosumer ids to policy specs")
    for pid, spec in data.items():
        if pid not in specs:
            raise RunSpecError(f"policies file {path}: {pid!r} is not a prosumer of the run")
        specs[pid] = check_policy_spec(spec)
    return specs


def _layout(
    options: DeployOptions, ids: tuple[str, ...], tmp_dir: Path | None
) -> tuple[RelayEndpoints, dict[str, tuple[str, str, str]], dict[str, tuple[str, ...]]]:
    """Relay bind endpoints; per agent (host, upstream, downstream); launch prefix per host."""
    agents = (DSO_ID, *ids)
    if options.transport == "ipc":
        if tmp_dir is None:
            raise RunSpecError("transport=ipc needs a folder for its sockets")
        relay = RelayEndpoints.ipc(tmp_dir)
        return relay, {a: (LOCAL_HOST, relay.upstream, relay.downstream) for a in agents}, {}
    if options.hosts is None:
        up, down = _free_ports(LOOPBACK_HOST, 2)
        relay = RelayEndpoints.tcp(LOOPBACK_HOST, up, down)
        return relay, {a: (LOCAL_HOST, relay.upstream, relay.downstream) for a in agents}, {}
    hosts: HostsFile = load_hosts(Path(options.hosts))
    if not (hosts.upstream_port and hosts.downstream_port):
        try:
            up, down = _free_ports(hosts.dso_address, 2)
        except OSError as exc:
            raise RunSpecError(
                f"hosts file {options.hosts}: cannot pick free ports on {hosts.dso_address} "
                f"({exc.strerror}); set upstream_port and downstream_port"
            ) from None
        hosts = replace(hosts, upstream_port=up, downstream_port=down)
    relay = RelayEndpoints.tcp(hosts.dso_address, hosts.upstream_port, hosts.downstream_port)
    placement = {DSO_ID: hosts.dso_host, **hosts.assign(ids)}
    layout = {a: (h, *hosts.endpoints(h)) for a, h in placement.items()}
    launch = {name: host.launch for name, host in hosts.hosts.items() if host.launch}
    return relay, layout, launch


def prepare(
    config: SimConfig,
    options: DeployOptions,
    out_dir: Path,
    *,
    faults: Mapping[str, Fault] | None = None,
    world: RunInputs | None = None,
) -> Prepared:
    """Write the run spec (``out_dir/deploy/run.json``) and the feeder snapshot for a run.

    Removes the records and logs of an earlier run in ``out_dir``. ``faults`` injects faults
    into chosen agents (tests).
    """
    out_dir = Path(out_dir).resolve()
    world = world if world is not None else build_run_inputs(config)
    ids = world.prosumer_ids
    deploy_dir = out_dir / "deploy"
    records_dir = out_dir / "agents"
    records_dir.mkdir(parents=True, exist_ok=True)
    for old in (*records_dir.glob("*.jsonl"), *(deploy_dir / "logs").glob("*.log")):
        old.unlink()
    feeder_file = save_feeder(world.feeder, deploy_dir / "feeder.json")
    tmp_dir = Path(tempfile.mkdtemp(prefix="p2pvar-")) if options.transport == "ipc" else None
    try:
        relay, layout, launch = _layout(options, ids, tmp_dir)
        policies = _policies(options, config, ids)
        keys = None
        if options.keys is not None:
            keys = str(Path(options.keys).resolve())
            init_keystore(Path(keys), [DSO_ID, *ids])
        faults = dict(faults or {})
        unknown = sorted(set(faults) - {DSO_ID, *ids})
        if unknown:
            raise RunSpecError(f"faults: {unknown[0]!r} is not an agent of the run")
        agents = {
            a: AgentEntry(
                role=Role.DSO if a == DSO_ID else Role.PROSUMER,
                host=layout[a][0],
                upstream=layout[a][1],
                downstream=layout[a][2],
                policy=policies.get(a, ""),
                fault=faults.get(a),
            )
            for a in (DSO_ID, *ids)
        }
        spec = RunSpec(
            sim=config,
            options=options,
            relay=relay,
            agents=agents,
            records_dir=str(records_dir),
            feeder_file=str(feeder_file),
            keys=keys,
            launch=launch,
        )
        spec_path = save_run_spec(spec, deploy_dir / "run.json")
    except BaseException:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return Prepared(spec, spec_path, world, out_dir, tmp_dir)


def agent_command(prepared: Prepared, agent_id: str) -> list[str]:
    """The command line that starts ``agent_id`` (with its host's launch prefix)."""
    entry = prepared.spec.entry(agent_id)
    prefix = list(prepared.spec.launch.get(entry.host, ()))
    return [
        *prefix,
        sys.executable,
        "-m",
        "abm.cli.commands.agent",
        "--role",
        entry.role,
        "--id",
        agent_id,
        "--config",
        str(prepared.spec_path),
    ]


def _parent_death_signal() -> None:
    """In the child before exec: get SIGTERM when the launcher dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Deployment:
    """The processes of one prepared run (see the module docstring); a context manager."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.spec = prepared.spec
        self.procs: dict[str, subprocess.Popen] = {}
        #: Every process started, restarts included, in start order.
        self.history: list[tuple[str, subprocess.Popen]] = []
        self.log_dir = prepared.out_dir / "deploy" / "logs"

    # -- processes --------------------------------------------------------------------------
    def spawn(self, agent_id: str) -> subprocess.Popen:
        """Start ``agent_id`` (again, if it ran before and has exited)."""
        old = self.procs.get(agent_id)
        if old is not None and old.poll() is None:
            raise DeployError(f"{agent_id} is still running (pid {old.pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, SPAWN_NS_ENV: str(time.time_ns())}
        if agent_id != DSO_ID:
            env.update(SINGLE_THREAD_ENV)
        with open(self.log_dir / f"{agent_id}.log", "ab") as log:
            proc = subprocess.Popen(
                agent_command(self.prepared, agent_id),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_parent_death_signal,
            )
        self.procs[agent_id] = proc
        self.history.append((agent_id, proc))
        return proc

    def start(self) -> None:
        """Start the DSO (with the relay), then every prosumer."""
        for agent_id in (DSO_ID, *self.spec.prosumer_ids):
            self.spawn(agent_id)

    def kill(self, agent_id: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to ``agent_id``'s process group and wait for it; its exit code."""
        proc = self.procs[agent_id]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        return proc.wait(timeout=TERM_GRACE_S * 10)

    def alive(self, agent_id: str) -> bool:
        """Whether ``agent_id``'s process is running."""
        proc = self.procs.get(agent_id)
        return proc is not None and proc.poll() is None

    def completed_intervals(self) -> int:
        """How many intervals the DSO has recorded as completed so far."""
        records = read_records(self.spec.records_path(DSO_ID)).records
        return sum(r.get("type") == "interval" for r in records)

    def wait_for(self, intervals: int, timeout_s: float) -> None:
        """Block until the DSO completed ``intervals`` intervals (or raise after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while self.completed_intervals() < intervals:
            if not self.alive(DSO_ID):
                raise DeployError(f"the DSO exited before completing {intervals} intervals")
            if time.monotonic() > deadline:
                raise DeployError(f"fewer than {intervals} intervals done within {timeout_s} s")
            time.sleep(WATCH_S)

    def run_timeout_s(self) -> float:
        """Upper bound of a run's duration (every phase of every interval to its deadline)."""
        options = self.spec.options
        phases = self.spec.sim.interval_script().n_deadline_phases
        n = self.prepared.world.n_intervals
        worst_ms = options.join_timeout_ms + n * phases * options.phase_deadline_ms
        return (worst_ms + CLOSE_TIMEOUT_MS) / 1000 + RUN_SLACK_S

    def wait(self, timeout_s: float | None = None, *, progress: bool = False) -> None:
        """Wait for the DSO to exit, then (bounded) for every prosumer; stop the rest.

        An agent that exits with an error before the first interval is a setup problem
        (bad policy spec, port in use, ...): :class:`DeployError` with its log's last line.
        With ``progress`` a bar shows the intervals done and who took part in the last one.
        """
        timeout_s = self.run_timeout_s() if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        started = False
        with IntervalProgress(self.spec, self.prepared.world.n_intervals, progress) as bar:
            while self.alive(DSO_ID):
                if time.monotonic() > deadline:
                    raise DeployError(f"the run did not finish within {timeout_s:.0f} s")
                started = started or bar.update() > 0
                if not started:
                    self._check_setup()
                time.sleep(WATCH_S)
            bar.update()
        if not started:
            self._check_setup()
        grace = (self.spec.options.dso_silence_ms + CLOSE_TIMEOUT_MS) / 1000
        deadline = time.monotonic() + grace
        while any(self.alive(a) for a in self.procs) and time.monotonic() < deadline:
            time.sleep(WATCH_S)
        self.stop()

    def _check_setup(self) -> None:
        """Raise if an agent failed before the first interval (see :meth:`wait`)."""
        for agent_id, proc in self.procs.items():
            code = proc.poll()
            if code not in (None, 0) and not self._has_started(agent_id):
                raise DeployError(
                    f"{agent_id} exited with status {code} before the first interval: "
                    f"{self.log_tail(agent_id).removeprefix('p2pvar: error: ')}"
                )

    def _has_started(self, agent_id: str) -> bool:
        records = read_records(self.spec.records_path(agent_id)).records
        return any(r.get("type") == "start" for r in records)

    def log_tail(self, agent_id: str) -> str:
        """The last non-empty line of ``agent_id``'s log (empty if none)."""
        path = self.log_dir / f"{agent_id}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def stop(self) -> None:
        """Terminate every process still running (SIGTERM, then SIGKILL); record exit codes."""
        running = [a for a in self.procs if self.alive(a)]
        for agent_id in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.procs[agent_id].pid, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        for agent_id in running:
            proc = self.procs[agent_id]
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.prepared.tmp_dir is not None:
            shutil.rmtree(self.prepared.tmp_dir, ignore_errors=True)

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def exit_codes(self) -> dict[str, list[int | None]]:
        """Exit codes of every process started per agent (``None``: still running)."""
        codes: dict[str, list[int | None]] = {}
        for agent_id, proc in self.history:
            codes.setdefault(agent_id, []).append(proc.poll())
        return codes

    # -- results ----------------------------------------------------------------------------
    def collect(self, *, interrupted: bool = False) -> DeployResult:
        """Merge the records and write every table, ``config.json`` and ``summary.json``."""
        return collect(self.prepared, self.exit_codes, interrupted=interrupted)


class IntervalProgress:
    """A progress bar of a running deployment (in a terminal), fed by the DSO's records."""

    def __init__(self, spec: RunSpec, n_intervals: int, enabled: bool) -> None:
        self.path = spec.records_path(DSO_ID)
        self.n_prosumers = len(spec.prosumer_ids)
        self.done = 0
        self._offset = 0
        self._bar = tqdm(
            total=n_intervals,
            desc="intervals",
            unit="int",
            disable=not (enabled and sys.stderr.isatty()),  # error lines stay one line in logs
            leave=False,
        )

    def update(self) -> int:
        """Read the DSO's new interval records; the number of intervals done so far."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return self.done
        end = data.rfind(b"\n") + 1  # a torn last line is read next time
        self._offset += end
        for line in data[:end].splitlines():
            if b'"type":"interval"' in line:
                present = len(json.loads(line)["present"])
                self.done += 1
                self._bar.update(1)
                self._bar.set_postfix_str(f"present {present}/{self.n_prosumers}", refresh=False)
        return self.done

    def __enter__(self) -> IntervalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()


@dataclass
class DeployResult:
    """Tables, summary and end status of a deployment."""

    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    status: dict[str, Any]

    @property
    def complete(self) -> bool:
        """Whether the DSO completed every interval, closed the run, and the market ran."""
        return bool(self.status["complete"])


def participation(merged: Merged, world: RunInputs) -> dict[str, Any]:
    """Who took part: share of prosumer-intervals present, partial and empty intervals."""
    timing = merged.tables["timing"]
    n, ids = world.n_intervals, world.prosumer_ids
    present = set(merged.tables["prosumers"]["prosumer"]) | {
        p for rec in merged.present.values() for p in rec
    }
    share = float(timing["n_present"].sum()) / (len(ids) * n) if ids and n else 0.0
    return {
        "participation": share,
        "intervals_partial": int((timing["n_present"] < len(ids)).sum()),
        "intervals_empty": int((timing["n_present"] == 0).sum()),
        "incomplete_intervals": int((~timing["complete"].astype(bool)).sum()),
        "never_present": [p for p in ids if p not in present],
    }


def _summary(merged: Merged, world: RunInputs) -> dict[str, Any]:
    from analysis.metrics import summarize

    tables = merged.tables
    msgs = tables["messages"]
    run_msgs = msgs[msgs["interval"] >= 0]
    summary: dict[str, Any] = dict(summarize({**tables, "messages": run_msgs}, world.duration_h))
    timing = tables["timing"]
    ready = tables["processes"]["ready_ms"].dropna()
    summary.update(
        {
            "interval_ms_median": float(timing["wall_ms"].median()) if len(timing) else 0.0,
            "interval_ms_p90": float(timing["wall_ms"].quantile(0.9)) if len(timing) else 0.0,
            "startup_ms_median": float(ready.median()) if len(ready) else 0.0,
            "startup_ms_max": float(ready.max()) if len(ready) else 0.0,
            "absent_prosumer_intervals": int(tables["intervals"]["absent_prosumers"].sum()),
            "p2p_imbalance_kwh": float(timing["p2p_imbalance_kwh"].abs().sum()),
            "refused_messages": int(tables["refusals"]["count"].sum()),
        }
    )
    summary.update({k: v for k, v in participation(merged, world).items() if k != "never_present"})
    return summary


def collect(
    prepared: Prepared, exit_codes: Mapping[str, list[int | None]], *, interrupted: bool = False
) -> DeployResult:
    """Merge the records of a finished (failed, interrupted) run and write its outputs."""
    world = prepared.world
    merged = merge_records(Path(prepared.spec.records_dir), world.prosumer_ids)
    final = merged.dso_final or {}
    finished = final.get("status") == 0 and merged.last_completed == world.n_intervals - 1
    taking_part = participation(merged, world)
    market_ran = taking_part["participation"] >= MIN_PARTICIPATION
    status = {
        "complete": finished and market_ran and not interrupted,
        "stopped_by": "interrupted (Ctrl-C or SIGTERM)" if interrupted else "",
        "intervals": world.n_intervals,
        "last_completed_interval": merged.last_completed,
        "market_ran": market_ran,
        "min_participation": MIN_PARTICIPATION,
        **taking_part,
        "incomplete_interval_list": [
            int(t) for t in merged.tables["timing"].query("not complete")["interval"]
        ],
        "dso_status": final.get("status"),
        "dso_reason": final.get("reason", "no final record (the DSO process died)"),
        "exit_codes": {a: codes for a, codes in exit_codes.items()},
        "relay": final.get("relay"),
    }
    summary = _summary(merged, world)
    out = prepared.out_dir
    write_run_config(
        out,
        prepared.spec.sim,
        prepared.spec.sim.seed,
        backend="multi-process",
        deploy=prepared.spec.options,
        days=list(world.days),
        scenario=scenario_to_dict(world.scenario),
    )
    write_tables(out, merged.tables)
    write_json(out / "summary.json", summary)
    write_json(out / "status.json", status)
    return DeployResult(merged.tables, summary, status)


def collect_existing(out_dir: Path) -> DeployResult:
    """Merge the records of a run whose agents were started by hand (``--dry-run`` spec)."""
    from abm.deploy.agent_main import build_agent_world

    out_dir = Path(out_dir).resolve()
    spec_path = out_dir / "deploy" / "run.json"
    spec = load_run_spec(spec_path)
    prepared = Prepared(spec, spec_path, build_agent_world(spec), out_dir, None)
    return collect(prepared, {})


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the launcher, so cleanup runs (main thread)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def deploy(
    config: SimConfig,
    options: DeployOptions,
    out_dir: Path,
    *,
    faults: Mapping[str, Fault] | None = None,
    progress: bool = False,
) -> DeployResult:
    """Run ``config`` with every agent in its own process; write and return the results.

    Raises (after writing what was completed) :class:`RunIncomplete` when the DSO stopped
    before the last interval, :class:`MarketDidNotRun` when too few prosumers took part.
    """
    prepared = prepare(config, options, out_dir, faults=faults)
    interrupted = False
    with _sigterm_as_interrupt(), Deployment(prepared) as deployment:
        deployment.start()
        try:
            deployment.wait(progress=progress)
        except KeyboardInterrupt:
            interrupted = True  # every process is stopped on the way out; then collect
    result = deployment.collect(interrupted=interrupted)
    if interrupted:
        raise KeyboardInterrupt
    check_result(result, prepared.out_dir)
    return result


def check_result(result: DeployResult, out_dir: Path) -> None:
    """Raise when the run stopped early or the market did not run (results are written)."""
    status = result.status
    if status["last_completed_interval"] < status["intervals"] - 1 or status["dso_status"] != 0:
        raise RunIncomplete(
            f"the run stopped after interval {status['last_completed_interval']} of "
            f"{status['intervals']} ({status['dso_reason']}); completed "
            f"intervals are in {out_dir}"
        )
    if not status["market_ran"]:
        raise MarketDidNotRun(
            f"the market did not run: {status['participation']:.0%} of prosumer-intervals "
            f"took part (at least {MIN_PARTICIPATION:.0%} needed), "
            f"{status['intervals_empty']} of {status['intervals']} intervals had no prosumer"
            f"{_never_present_text(status['never_present'])}; results are in {out_dir}"
        )


def _never_present_text(ids: list[str], shown: int = 8) -> str:
    if not ids:
        return ""
    names = " ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")
    return f"; never took part: {names}"
