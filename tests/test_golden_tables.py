"""Before/after: a fixed config's tables, hashed (minus ``wall_*`` columns), must not change
when the simulator is optimised. The digests in ``golden/tables.json`` were recorded from the
unoptimised code; update them only for a deliberate change of results, and say so in the commit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlts_ray.analysis.load import load_table
from mlts_ray.config import build_config
from mlts_ray.runtime.local import run_local
from mlts_ray.results.schemas import TABLES

GOLDEN = Path(__file__).parent / "golden" / "tables.json"
CONFIG = {
    "experiment": {"name": "golden", "seed": 1234, "rounds": 4, "runtime": "local"},
    "topology": {"vpps": 3, "nodes_per_vpp": 12, "grid_nodes": 2},
    "consensus": {"side_committee_min": 4},
    "workload": {"cross_vpp_share": 0.5},
    "network": {"loss": 0.03},
    "faults": {"byzantine_fraction": 0.3, "where": "both",
               "behaviours": ["equivocate", "forge", "silent", "delay", "abandon", "false-audit"]},
}


def table_digests(run_dir) -> dict[str, str]:
    out = {}
    for name in TABLES:
        df = load_table(run_dir, name)
        df = df[[c for c in df.columns if not c.startswith("wall_")]]
        out[name] = hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()
    return out


def test_tables_match_the_recorded_digests(tmp_path):
    digests = table_digests(run_local(build_config(CONFIG), tmp_path))
    assert digests == json.loads(GOLDEN.read_text())


if __name__ == "__main__":  # python tests/test_golden_tables.py  -> record anew
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(json.dumps(table_digests(run_local(build_config(CONFIG), tmp)), indent=2) + "\n")
    print(GOLDEN.read_text())
