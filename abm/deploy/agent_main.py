"""One agent process: ``p2pvar agent --role dso|prosumer --id ID --config FILE``.

Builds the run's world from the run spec (the feeder from the launcher's snapshot file when
the spec names one, so no pandapower import), then either hosts the relay and runs the DSO
clock, or builds its own prosumer (its policy from ``agent_rngs(seed, n)[index]`` and its
policy spec) and runs the prosumer loop. Records go to ``<records_dir>/<id>.jsonl``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import zmq

from abm.deploy.dso_process import DsoClock
from abm.deploy.errors import RunSpecError
from abm.deploy.feeder_file import load_feeder
from abm.deploy.lifecycle import EXIT_TERMINATED, Terminated, install_signal_handlers
from abm.deploy.link import AgentLink
from abm.deploy.policies import load_policy
from abm.deploy.prosumer_process import ProsumerLoop
from abm.deploy.records import RecordWriter, cpu_s
from abm.deploy.spec import DSO_ID, AgentEntry, RunSpec, load_run_spec
from abm.inputs.run_inputs import RunInputs, agent_rngs, build_run_inputs, make_dso, make_prosumer
from agents.prosumer import ProsumerAgent
from messaging.security import KeyStore
from messaging.zmq_transport import Relay

#: I/O threads of the relay's own ZeroMQ context.
RELAY_IO_THREADS = 1
#: Environment variable in which the launcher passes the spawn time (ns since the epoch).
SPAWN_NS_ENV = "P2PVAR_SPAWN_NS"


def build_agent_world(spec: RunSpec) -> RunInputs:
    """The run's world, with the feeder from the spec's snapshot file when there is one."""
    feeder = load_feeder(Path(spec.feeder_file)) if spec.feeder_file else None
    return build_run_inputs(spec.sim, feeder=feeder)


def _start_record(entry: AgentEntry, link: AgentLink) -> dict:
    spawn_ns = os.environ.get(SPAWN_NS_ENV, "")
    ready_ms = (time.time_ns() - int(spawn_ns)) / 1e6 if spawn_ns.isdigit() else None
    return {
        "type": "start",
        "pid": os.getpid(),
        "role": entry.role,
        "host": entry.host,
        "ready_ms": ready_ms,
        "cpu_s": cpu_s(),
        "incarnation": link.next_control_seq(),
    }


def run_agent(config: Path, role: str, agent_id: str) -> int:
    """Run agent ``agent_id`` of the run spec ``config`` in this process; its exit status."""
    spec = load_run_spec(config)
    entry = spec.entry(agent_id)
    if entry.role != role:
        has = str(entry.role)
        raise RunSpecError(f"id={agent_id!r} has role {has!r} in {config}, not {role!r}")
    install_signal_handlers()
    keys = KeyStore(Path(spec.keys)) if spec.keys else None
    writer = RecordWriter(spec.records_path(agent_id))
    try:
        world = build_agent_world(spec)
        if role == "dso":
            return _run_dso(spec, world, entry, keys, writer)
        return _run_prosumer(spec, world, agent_id, entry, keys, writer)
    except Terminated as exc:
        writer.write({"type": "final", "status": EXIT_TERMINATED, "reason": f"terminated by {exc}"})
        return EXIT_TERMINATED
    finally:
        writer.close()


def _run_dso(
    spec: RunSpec, world: RunInputs, entry: AgentEntry, keys: KeyStore | None, writer: RecordWriter
) -> int:
    dso = make_dso(world)
    script = spec.sim.interval_script()  # before the relay: its first heartbeat goes at once
    # The relay gets its own context (its own I/O thread): forwarding for every agent must
    # not starve the DSO's own connection, nor the DSO's work the relay's heartbeats.
    relay_context = zmq.Context(io_threads=RELAY_IO_THREADS)
    # The DSO is the relay's clock: the prosumers' messages to each other (orders, confirms)
    # reach their recipients as one batch frame each just before the DSO's next messages.
    relay_clock = DSO_ID if spec.options.batch_frames else None
    relay = Relay(
        spec.relay,
        keys=keys,
        agents=spec.agents,
        context=relay_context,
        clock=relay_clock,
        local=f"p2pvar-dso-{os.getpid()}",
    ).start()
    try:
        # The DSO reads no peer broadcasts (orders), only what is sent to it; without keys
        # it reaches the relay in-process (no socket, no I/O thread in between).
        local = None if relay.local_endpoints is None else (relay.local_endpoints, relay_context)
        link = AgentLink(
            DSO_ID,
            entry,
            keys,
            spec.options.join_timeout_ms,
            broadcasts=False,
            bundle_sends=spec.options.batch_frames,
            local=local,
        )
        try:
            writer.write(_start_record(entry, link))
            clock = DsoClock(
                spec,
                world.prosumer_ids,
                world.n_intervals,
                dso,
                link,
                writer,
                relay_stats=lambda: vars(relay.stats).copy(),
                script=script,
                fault=entry.fault,
            )
            return clock.run()
        finally:
            link.close()
    finally:
        relay.close()
        relay_context.destroy(linger=0)


def build_prosumer(
    spec: RunSpec, world: RunInputs, agent_id: str, entry: AgentEntry
) -> ProsumerAgent:
    """Prosumer ``agent_id`` of the run, its policy from the spec (or the run's default)."""
    ids = world.prosumer_ids
    if agent_id not in ids:
        raise RunSpecError(f"id={agent_id!r} is not a prosumer of the scenario ({len(ids)} ids)")
    index = ids.index(agent_id)
    policy = load_policy(
        entry.policy or spec.sim.policy, agent_rngs(spec.sim.seed, len(ids))[index], world, index
    )
    return make_prosumer(world, index, policy)


def _run_prosumer(
    spec: RunSpec,
    world: RunInputs,
    agent_id: str,
    entry: AgentEntry,
    keys: KeyStore | None,
    writer: RecordWriter,
) -> int:
    agent = build_prosumer(spec, world, agent_id, entry)
    link = AgentLink(
        agent_id,
        entry,
        keys,
        spec.options.join_timeout_ms,
        bundle_sends=spec.options.batch_frames,
    )
    try:
        writer.write(_start_record(entry, link))
        return ProsumerLoop(spec, agent, link, writer, entry.fault).run()
    finally:
        link.close()
