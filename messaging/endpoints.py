"""Where the relay listens: endpoint addresses and the transport configuration.

Addresses default to loopback (tcp on 127.0.0.1 with free ports, or ipc sockets in a
private directory); binding tcp beyond loopback requires CURVE keys (see
:class:`messaging.zmq_transport.Relay`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from messaging.errors import TransportError
from messaging.security import KeyStore

#: Default tcp host: loopback.
LOOPBACK_HOST = "127.0.0.1"
#: Longest ipc path libzmq accepts (sun_path), bytes.
MAX_IPC_PATH_BYTES = 107
MAX_PORT = 65535


@dataclass(frozen=True)
class RelayEndpoints:
    """Addresses of the relay: ``upstream`` (its ROUTER) and ``downstream`` (its PUB)."""

    upstream: str
    downstream: str

    @classmethod
    def inproc(cls, name: str = "p2pvar") -> RelayEndpoints:
        """In-process endpoints (relay and agents must share one ``zmq.Context``)."""
        return cls(f"inproc://{name}-up", f"inproc://{name}-down")

    @classmethod
    def ipc(cls, directory: str | Path) -> RelayEndpoints:
        """Unix-socket endpoints in ``directory`` (use a private tmp dir)."""
        up, down = Path(directory) / "up.sock", Path(directory) / "down.sock"
        for path in (up, down):
            if len(str(path).encode()) > MAX_IPC_PATH_BYTES:
                raise TransportError(f"ipc path {str(path)!r}: longer than {MAX_IPC_PATH_BYTES}")
        return cls(f"ipc://{up}", f"ipc://{down}")

    @classmethod
    def tcp(
        cls, host: str = LOOPBACK_HOST, upstream_port: int = 0, downstream_port: int = 0
    ) -> RelayEndpoints:
        """TCP endpoints; port 0 lets the relay pick a free port (see ``Relay.endpoints``)."""
        up = upstream_port or "*"
        down = downstream_port or "*"
        return cls(f"tcp://{host}:{up}", f"tcp://{host}:{down}")

    @property
    def is_loopback(self) -> bool:
        """Whether no address leaves this host (inproc, ipc, or tcp on a loopback address)."""
        return all(_is_local(a) for a in (self.upstream, self.downstream))


def _is_local(address: str) -> bool:
    scheme, _, rest = address.partition("://")
    if scheme != "tcp":
        return True
    host = rest.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ZmqConfig:
    """Configuration of the ZeroMQ backend (CLI flags derive from the field help)."""

    scheme: Literal["inproc", "ipc", "tcp"] = field(
        default="ipc", metadata={"help": "transport: inproc (threads), ipc (one host), tcp"}
    )
    host: str = field(default=LOOPBACK_HOST, metadata={"help": "tcp host the relay binds"})
    upstream_port: int = field(
        default=0, metadata={"help": "tcp port of the relay's ROUTER (0: a free port)"}
    )
    downstream_port: int = field(
        default=0, metadata={"help": "tcp port of the relay's PUB (0: a free port)"}
    )
    ipc_dir: str | None = field(
        default=None, metadata={"help": "directory of the ipc sockets (default: a tmp dir)"}
    )
    keys_dir: str | None = field(
        default=None, metadata={"help": "CURVE key store (p2pvar keys init); none: plaintext"}
    )

    def __post_init__(self) -> None:
        if self.scheme not in ("inproc", "ipc", "tcp"):
            raise TransportError(f"scheme={self.scheme!r}: not one of inproc, ipc, tcp")
        for name in ("upstream_port", "downstream_port"):
            port = getattr(self, name)
            if not 0 <= port <= MAX_PORT:
                raise TransportError(f"{name}={port}: not in [0, {MAX_PORT}]")

    def endpoints(self, ipc_dir: str | Path | None = None, name: str = "p2pvar") -> RelayEndpoints:
        """The relay endpoints; ``ipc_dir`` is used when the config names none."""
        if self.scheme == "inproc":
            return RelayEndpoints.inproc(name)
        if self.scheme == "ipc":
            folder = self.ipc_dir or ipc_dir
            if folder is None:
                raise TransportError("ipc_dir: none configured and none given")
            return RelayEndpoints.ipc(folder)
        return RelayEndpoints.tcp(self.host, self.upstream_port, self.downstream_port)

    def keystore(self) -> KeyStore | None:
        """The CURVE key store, or ``None`` for plaintext."""
        return None if self.keys_dir is None else KeyStore(Path(self.keys_dir))
