"""Write CIGRE MV feeder 1 (``scripts.cigre``) to ``dso/data/cigre_mv_feeder1.json``.

Run from the repository root: ``python -m scripts.make_cigre_mv_feeder1 [--out PATH]``.
Use the feeder with ``p2pvar simulate --network dso/data/cigre_mv_feeder1.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.cigre import cigre_mv_feeder1
from scripts.swiss_mv import sha256, write_json

OUT = Path(__file__).resolve().parents[1] / "dso" / "data" / "cigre_mv_feeder1.json"


def main() -> int:
    """Build the feeder and write it; print the file's sha256."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output JSON file")
    args = parser.parse_args()
    write_json(cigre_mv_feeder1(), args.out)
    print(f"{args.out}: sha256 {sha256(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
