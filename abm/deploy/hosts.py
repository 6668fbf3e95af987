"""Hosts files: which host runs which agent, and where the DSO's relay listens (tcp).

A hosts file is JSON::

    {
      "dso_host": "h0",
      "upstream_port": 47001,            # relay ROUTER port (0: a free one, loopback only)
      "downstream_port": 47002,          # relay PUB port
      "hosts": {
        "h0": {"address": "127.0.0.2"},
        "h1": {"address": "127.0.0.3", "agents": ["p01", "p02"]},
        "h2": {"address": "127.0.0.4", "agents": "*",
               "launch": ["ip", "netns", "exec", "p2pv-h2"]}
      }
    }

The DSO (and its relay) runs on ``dso_host`` and binds ``address`` there. Each prosumer runs
on the host that lists it (``"*"``: every prosumer no other host lists); prosumers nobody
lists run on ``dso_host``. An agent on another host connects from its host's ``address``
(ZeroMQ's ``tcp://source;destination`` form), so on one machine loopback addresses or network
namespaces stand in for hosts. ``launch`` is the command prefix the launcher puts before
the agent command (e.g. ``ip netns exec NS``); ``p2pvar deploy --dry-run`` writes the exact
per-host commands for hosts the launcher cannot start itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from abm.deploy.errors import RunSpecError
from abm.output.jsonfile import load_json

MAX_PORT = 65535
#: ``agents`` value of the host that takes every prosumer no other host lists.
ALL_OTHERS = "*"


@dataclass(frozen=True)
class Host:
    """One host: its address, the command prefix that starts a process there, its agents."""

    name: str
    address: str
    agents: tuple[str, ...] | str = ()
    launch: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostsFile:
    """A parsed hosts file (see the module docstring)."""

    dso_host: str
    upstream_port: int
    downstream_port: int
    hosts: Mapping[str, Host] = field(default_factory=dict)

    @property
    def dso_address(self) -> str:
        """The address the relay binds."""
        return self.hosts[self.dso_host].address

    def assign(self, prosumer_ids: Sequence[str]) -> dict[str, str]:
        """Host name of every prosumer; :class:`RunSpecError` for unknown or doubled ids."""
        known = set(prosumer_ids)
        placed: dict[str, str] = {}
        catch_all = None
        for host in self.hosts.values():
            if host.agents == ALL_OTHERS:
                catch_all = host.name
                continue
            for agent in host.agents:
                if agent not in known:
                    raise RunSpecError(f"hosts.{host.name}.agents: {agent!r} is not a prosumer")
                if agent in placed:
                    raise RunSpecError(
                        f"hosts.{host.name}.agents: {agent!r} is already on {placed[agent]!r}"
                    )
                placed[agent] = host.name
        default = catch_all or self.dso_host
        return {pid: placed.get(pid, default) for pid in prosumer_ids}

    def endpoints(self, host: str) -> tuple[str, str]:
        """The relay's upstream and downstream endpoints as an agent on ``host`` connects."""
        relay = self.dso_address
        source = self.hosts[host].address
        prefix = "tcp://" if source == relay else f"tcp://{source}:0;"
        return (
            f"{prefix}{relay}:{self.upstream_port}",
            f"{prefix}{relay}:{self.downstream_port}",
        )


def _port(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PORT:
        raise RunSpecError(f"hosts file: {key}={value!r} must be an integer in [0, {MAX_PORT}]")
    return value


def _host(name: str, data: Any) -> Host:
    where = f"hosts.{name}"
    if not isinstance(data, Mapping):
        raise RunSpecError(f"{where}={data!r} must be a JSON object")
    unknown = sorted(set(data) - {"address", "agents", "launch"})
    if unknown:
        raise RunSpecError(f"{where}.{unknown[0]}: unknown field; expected address, agents, launch")
    address: Any = data.get("address")
    try:
        ipaddress.ip_address(address)
    except (TypeError, ValueError):
        raise RunSpecError(f"{where}.address={address!r} is not an IP address") from None
    agents = data.get("agents", [])
    if agents != ALL_OTHERS and (
        not isinstance(agents, list) or not all(isinstance(a, str) for a in agents)
    ):
        raise RunSpecError(f"{where}.agents={agents!r} must be a list of ids or {ALL_OTHERS!r}")
    launch = data.get("launch", [])
    if not isinstance(launch, list) or not all(isinstance(a, str) for a in launch):
        raise RunSpecError(f"{where}.launch={launch!r} must be a list of strings")
    return Host(
        name,
        str(address),
        agents if agents == ALL_OTHERS else tuple(agents),
        tuple(launch),
    )


def hosts_from_dict(data: Any) -> HostsFile:
    """Validate hosts-file data."""
    if not isinstance(data, Mapping):
        raise RunSpecError(f"hosts file: {data!r} must be a JSON object")
    unknown = sorted(set(data) - {"dso_host", "upstream_port", "downstream_port", "hosts"})
    if unknown:
        raise RunSpecError(f"hosts file: {unknown[0]}: unknown field")
    hosts = data.get("hosts")
    if not isinstance(hosts, Mapping) or not hosts:
        raise RunSpecError(f"hosts file: hosts={hosts!r} must be a non-empty JSON object")
    parsed = {name: _host(name, body) for name, body in hosts.items()}
    dso_host = data.get("dso_host")
    if not isinstance(dso_host, str) or dso_host not in parsed:
        raise RunSpecError(f"hosts file: dso_host={dso_host!r} is not one of {sorted(parsed)}")
    if sum(h.agents == ALL_OTHERS for h in parsed.values()) > 1:
        raise RunSpecError(f"hosts file: more than one host has agents={ALL_OTHERS!r}")
    up, down = _port(data, "upstream_port"), _port(data, "downstream_port")
    if up and up == down:
        raise RunSpecError(f"hosts file: upstream_port and downstream_port are both {up}")
    return HostsFile(dso_host, up, down, parsed)


def load_hosts(path: Path) -> HostsFile:
    """Read and validate a hosts file; errors name the file."""
    return load_json(path, "hosts file", RunSpecError, hosts_from_dict)
