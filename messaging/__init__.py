"""Messages, codec, transports and overhead counters of the p2pvar agents.

The protocol lives in :mod:`messaging.messages` (one frozen dataclass per kind, ``KINDS``),
the wire format in :mod:`messaging.codec` (``encode``/``decode``/``validate``), the
transports in :mod:`messaging.memory` (in-process) and :mod:`messaging.zmq_transport`
(relay and endpoints over inproc/ipc/tcp, CURVE via :mod:`messaging.security`), the
overhead counters in :mod:`messaging.counters`. See ``docs/messaging.md``.
"""
