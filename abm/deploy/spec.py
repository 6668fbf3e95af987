"""What every process of a deployment reads: options, per-agent entries, the run spec file.

:class:`DeployOptions` holds the deployment flags of ``p2pvar deploy`` (CLI flags derive from
its fields). The launcher resolves them into a :class:`RunSpec`, written as one JSON file
(``DIR/deploy/run.json``) that ``p2pvar agent --config FILE`` reads: the simulation config,
timeouts, where the DSO's relay binds, and per agent its role, host, the endpoints it
connects to and its policy spec. Every process builds the same world from the same spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from abm.config import SimConfig, enum_value
from abm.deploy.errors import RunSpecError
from abm.deploy.faults import Fault
from abm.errors import ConfigError
from abm.output.jsonfile import build_dataclass, json_object, json_text, load_json, write_json
from abm.output.provenance import to_jsonable
from messaging.endpoints import RelayEndpoints
from messaging.messages import AGENT_ID_PATTERN, DSO_ID

#: Version of the run spec layout; :func:`run_spec_from_dict` refuses any other.
RUN_SPEC_VERSION = 1
#: How long the DSO waits for a phase's acks before it marks the silent prosumers absent, ms.
PHASE_DEADLINE_MS = 10_000
#: How long the DSO waits for every prosumer to join before the first interval, ms.
JOIN_TIMEOUT_MS = 180_000
#: How long a prosumer waits without any message from the DSO before it stops, ms.
DSO_SILENCE_MS = 15_000
#: The DSO sends a heartbeat when it has sent nothing for this long, ms.
DSO_HEARTBEAT_MS = 1_000
#: How long the DSO waits for every prosumer's ``Leave`` after ``Phase(close)``, ms.
CLOSE_TIMEOUT_MS = 10_000
#: Agent id of the DSO process.
#: Host name of agents started on the launcher's own host.
LOCAL_HOST = "local"


class Role(StrEnum):
    """What an agent process runs."""

    DSO = "dso"
    PROSUMER = "prosumer"


class Transport(StrEnum):
    """How the processes talk: unix sockets on one host, or TCP."""

    IPC = "ipc"
    TCP = "tcp"


def _positive_ms(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer (ms)")


@dataclass(frozen=True)
class DeployOptions:
    """How ``p2pvar deploy`` runs the processes: transport, timeouts, hosts, keys, policies."""

    transport: Transport = field(
        default=Transport.IPC,
        metadata={"help": "ipc (unix sockets on this host) or tcp (loopback, or --hosts)"},
    )
    phase_deadline_ms: int = field(
        default=PHASE_DEADLINE_MS,
        metadata={"help": "deadline of each market phase; a prosumer silent past it is absent"},
    )
    join_timeout_ms: int = field(
        default=JOIN_TIMEOUT_MS,
        metadata={"help": "how long the DSO waits for all prosumers before the first interval"},
    )
    dso_silence_ms: int = field(
        default=DSO_SILENCE_MS,
        metadata={"help": "a prosumer stops after this long without a message from the DSO"},
    )
    hosts: str | None = field(
        default=None,
        metadata={"help": "hosts file (JSON): relay address and the agents of each host (tcp)"},
    )
    keys: str | None = field(
        default=None,
        metadata={"help": "CURVE key store directory; missing agent key pairs are created"},
    )
    policies: str | None = field(
        default=None,
        metadata={"help": "JSON file mapping prosumer ids to policy specs (default: --policy)"},
    )
    batch_frames: bool = field(
        default=True,
        metadata={
            "help": "the relay holds the prosumers' messages to each other (orders, confirms) "
            "and releases them with the DSO's next frame, one batch frame per recipient, and "
            "every agent sends what it has to send at once as one bundle frame (off: one "
            "frame per message, the baseline of bench deploy)"
        },
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "transport", enum_value(Transport, "transport", self.transport))
        for name in ("phase_deadline_ms", "join_timeout_ms", "dso_silence_ms"):
            _positive_ms(name, getattr(self, name))
        if self.dso_silence_ms <= 2 * DSO_HEARTBEAT_MS:
            raise ConfigError(
                f"dso_silence_ms={self.dso_silence_ms} must exceed twice the DSO heartbeat "
                f"({DSO_HEARTBEAT_MS} ms)"
            )
        if self.hosts is not None and self.transport != "tcp":
            raise ConfigError(f"hosts={self.hosts!r} needs transport=tcp, not {self.transport}")


@dataclass(frozen=True)
class AgentEntry:
    """One agent process: role, host, the relay endpoints it connects to, its policy spec."""

    role: Role
    host: str
    upstream: str
    downstream: str
    policy: str = ""
    fault: Fault | None = None

    @property
    def endpoints(self) -> RelayEndpoints:
        """The relay endpoints this agent connects to."""
        return RelayEndpoints(self.upstream, self.downstream)


@dataclass(frozen=True)
class RunSpec:
    """Everything an agent process needs to take part in one run (see the module doc)."""

    sim: SimConfig
    options: DeployOptions
    relay: RelayEndpoints
    agents: Mapping[str, AgentEntry]
    records_dir: str
    feeder_file: str | None = None
    keys: str | None = None
    launch: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def entry(self, agent_id: str) -> AgentEntry:
        """The entry of ``agent_id``; :class:`RunSpecError` if the spec has none."""
        entry = self.agents.get(agent_id)
        if entry is None:
            raise RunSpecError(f"id={agent_id!r} is not an agent of this run spec")
        return entry

    @property
    def prosumer_ids(self) -> tuple[str, ...]:
        """Prosumer ids in spec order (scenario order)."""
        return tuple(a for a, e in self.agents.items() if e.role == "prosumer")

    def records_path(self, agent_id: str) -> Path:
        """The records file (JSON lines) of ``agent_id``."""
        return Path(self.records_dir) / f"{agent_id}.jsonl"


def run_spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    """The spec as plain JSON data (with ``format_version``)."""
    return {"format_version": RUN_SPEC_VERSION, **to_jsonable(spec)}


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    return json_object(data, where, RunSpecError)


def _build(cls: type, data: Any, where: str) -> Any:
    return build_dataclass(cls, data, where, RunSpecError)


def _text(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    return json_text(data, key, where, RunSpecError, optional=optional)


def _agent(agent_id: str, data: Any) -> AgentEntry:
    where = f"agents.{agent_id}"
    if not AGENT_ID_PATTERN.fullmatch(agent_id):
        raise RunSpecError(f"agents: id {agent_id!r} is not a valid agent id")
    body = dict(_mapping(data, where))
    body["role"] = enum_value(Role, f"{where}.role", body.get("role"), RunSpecError)
    for key in ("host", "upstream", "downstream"):
        _text(body, key, where)
    if not isinstance(body.get("policy", ""), str):
        raise RunSpecError(f"{where}.policy={body['policy']!r} must be a string")
    if body.get("fault") is not None:
        body["fault"] = _build(Fault, body["fault"], f"{where}.fault")
    return _build(AgentEntry, body, where)


def run_spec_from_dict(data: Any) -> RunSpec:
    """Rebuild and validate a run spec from :func:`run_spec_to_dict` data."""
    body = dict(_mapping(data, "run spec"))
    version = body.pop("format_version", None)
    if version != RUN_SPEC_VERSION:
        raise RunSpecError(f"format_version={version!r}: expected {RUN_SPEC_VERSION}")
    body["sim"] = _build(SimConfig, body.get("sim"), "sim")
    body["options"] = _build(DeployOptions, body.get("options"), "options")
    relay = _mapping(body.get("relay"), "relay")
    body["relay"] = RelayEndpoints(
        _text(relay, "upstream", "relay"), _text(relay, "downstream", "relay")
    )
    agents = _mapping(body.get("agents"), "agents")
    body["agents"] = {agent_id: _agent(agent_id, entry) for agent_id, entry in agents.items()}
    dsos = [a for a, e in body["agents"].items() if e.role == "dso"]
    if dsos != [DSO_ID]:
        raise RunSpecError(f"agents: the DSO entries are {dsos}; expected exactly [{DSO_ID!r}]")
    _text(body, "records_dir", "run spec")
    for key in ("feeder_file", "keys"):
        _text(body, key, "run spec", optional=True)
    launch = _mapping(body.get("launch", {}), "launch")
    for host, argv in launch.items():
        if not isinstance(argv, list | tuple) or not all(isinstance(a, str) for a in argv):
            raise RunSpecError(f"launch.{host}={argv!r} must be a list of strings")
    body["launch"] = {host: tuple(argv) for host, argv in launch.items()}
    return _build(RunSpec, body, "run spec")


def save_run_spec(spec: RunSpec, path: Path) -> Path:
    """Write the spec as JSON (temporary file and rename)."""
    return write_json(path, run_spec_to_dict(spec))


def load_run_spec(path: Path) -> RunSpec:
    """Read a run spec file; :class:`RunSpecError` names the file on any problem."""
    return load_json(path, "config file", RunSpecError, run_spec_from_dict)
