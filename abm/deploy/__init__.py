"""Decentralized deployment: the DSO and every prosumer in its own ZeroMQ process.

Modules (see ``docs/deploy.md``):

* :mod:`.spec` — :class:`DeployOptions` (``p2pvar deploy`` flags) and the run spec file
  every agent process reads (:class:`RunSpec`, :class:`AgentEntry`, :class:`Fault`);
* :mod:`.hosts` — hosts files (agents per host, relay address, launch prefixes);
* :mod:`.launcher` — :func:`prepare`, :class:`Deployment`, :func:`deploy`, :func:`collect`;
* :mod:`.agent_main` — one agent process (``p2pvar agent``);
* :mod:`.dso_process` — the relay host and market clock (:class:`DsoClock`);
* :mod:`.prosumer_process` — a prosumer's main loop (:class:`ProsumerLoop`);
* :mod:`.link`, :mod:`.guard` — an agent's endpoint, inbound duplicate/replay/late checks;
* :mod:`.records`, :mod:`.merge` — per-process JSON-lines records and the merged tables;
* :mod:`.policies` — policy specs (baselines or ``module:factory[@path]``);
* :mod:`.feeder_file` — the feeder snapshot that spares agent processes pandapower;
* :mod:`.lifecycle`, :mod:`.errors` — exit statuses, signals, typed errors.
"""
