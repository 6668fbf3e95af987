"""Write the example networks with transformers and static generators to ``dso/data``.

Run from the repository root: ``python scripts/make_example_networks.py [--out DIR]``
(SimBench grids need ``pip install simbench``; the CIGRE ones only pandapower). Writes

- ``cigre_mv.json``, ``cigre_mv_pv_wind.json``: pandapower's
  ``create_cigre_network_mv(with_der=False | "pv_wind")``, unchanged (110 kV slack, both
  110/20 kV transformers, both feeders, tie switches S1-S3 open as the benchmark defines);
- ``simbench_mv_rural.json``, ``simbench_lv_rural1.json``: SimBench ``1-MV-rural--0-sw`` and
  ``1-LV-rural1--0-sw`` (``simbench.get_simbench_net``), without their time series
  (``profiles``) and measurement table, which the radial model does not read.

and prints each file's sha256 (provenance: ``dso/data/EXAMPLE_NETWORKS_SOURCE.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "dso" / "data"
SIMBENCH_CODES = {
    "simbench_mv_rural": "1-MV-rural--0-sw",
    "simbench_lv_rural1": "1-LV-rural1--0-sw",
}


def _cigre(with_der: bool | str) -> Callable[[], Any]:
    def build() -> Any:
        import pandapower.networks as pn

        return pn.create_cigre_network_mv(with_der=with_der)

    return build


def _simbench(code: str) -> Callable[[], Any]:
    def build() -> Any:
        import simbench

        net = simbench.get_simbench_net(code)
        net.profiles = {}
        net.measurement = net.measurement.iloc[0:0]
        net.name = code
        return net

    return build


BUILDERS: dict[str, Callable[[], Any]] = {
    "cigre_mv": _cigre(False),
    "cigre_mv_pv_wind": _cigre("pv_wind"),
    **{name: _simbench(code) for name, code in SIMBENCH_CODES.items()},
}


def main() -> int:
    """Build every network and write it; print the files' sha256."""
    import pandapower as pp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = build()
        path = args.out / f"{name}.json"
        pp.to_json(net, str(path))
        print(f"{path}: sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
