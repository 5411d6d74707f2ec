"""Arrow schemas of the result tables (docs/architecture.md section 8), and rows as record
batches. Every table starts with ``run_id`` and ``round``; columns are typed explicitly so an
empty round still has the full schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

_KEYS = [("run_id", pa.string()), ("round", pa.int64())]


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(_KEYS + list(fields))


# the round's trading period (experiment.start + round * workload.period_minutes), in UTC
PERIOD = pa.timestamp("us", tz="UTC")

#: The only columns that may be null, and why: a metric the round did not reach (latency,
#: finality, the first proposal), a wall time not measured, a trade in no block, a market with
#: no trade to price. Every other column of every table is never null, and no float column is
#: ever NaN (the collector writes null for "none"): ``mlts verify`` checks both.
NULLABLE: dict[str, frozenset[str]] = {
    "consensus": frozenset({"latency_ms", "finality_ms", "proposed_ms", "wall_ms"}),
    "trades": frozenset({"height", "main_height"}),
    "market": frozenset({"price_mean", "price_min", "price_max"}),
}

#: What identifies a row within its round's file: one consensus row per chain, one message
#: row per chain and phase, one row per node, per block, per trade (a trade has one status a
#: round), per audit, per anchored collaborative block, per market. ``mlts verify`` refuses a
#: second row with the same key, naming it.
KEYS: dict[str, tuple[str, ...]] = {
    "consensus": ("chain",), "messages": ("chain", "phase"), "credits": ("chain", "node"),
    "blocks": ("chain", "height"), "trades": ("tx_id",), "audits": ("chain", "auditor", "target"),
    "anchors": ("main_height", "chain", "collab_height"), "energy": ("node",),
    "market": ("chain", "market"), "balances": ("node",),
}

SCHEMAS: dict[str, pa.Schema] = {
    "consensus": _schema(
        ("chain", pa.string()), ("period_start", PERIOD), ("algorithm", pa.string()),
        ("height", pa.int64()), ("n_nodes", pa.int64()), ("committee_size", pa.int64()), ("f", pa.int64()),
        ("primary", pa.string()), ("views", pa.int64()), ("committed", pa.bool_()),
        ("committed_beyond_f", pa.bool_()),
        ("latency_ms", pa.float64()), ("finality_ms", pa.float64()),
        ("proposed_ms", pa.float64()), ("messages", pa.int64()),
        ("bytes", pa.int64()), ("txs", pa.int64()), ("byzantine_in_committee", pa.int64()),
        ("committee_degraded", pa.bool_()), ("safety_violation", pa.bool_()),
        ("evidence", pa.int64()),
        ("signatures_made", pa.int64()), ("signatures_checked", pa.int64()),
        ("deliveries", pa.int64()), ("wall_ms", pa.float64()),
    ),
    "messages": _schema(
        ("chain", pa.string()), ("phase", pa.string()), ("count", pa.int64()),
        ("bytes", pa.int64()), ("dropped", pa.int64()),
    ),
    "credits": _schema(
        ("chain", pa.string()), ("node", pa.string()), ("role", pa.string()),
        ("behaviour", pa.string()), ("credit", pa.float64()), ("delta", pa.float64()),
        ("trading_credit", pa.float64()), ("in_committee", pa.bool_()), ("status", pa.string()),
    ),
    "blocks": _schema(
        ("chain", pa.string()), ("height", pa.int64()), ("kind", pa.string()),
        ("hash", pa.string()), ("prev_hash", pa.string()), ("merkle_root", pa.string()),
        ("anchor_root", pa.string()), ("index_field", pa.int64()), ("type_field", pa.int64()),
        ("n_txs", pa.int64()), ("proposer", pa.string()), ("last_commit", pa.string()),
        ("credit_root", pa.string()),
        ("payload", pa.binary()), ("certificate", pa.binary()),
    ),
    "trades": _schema(
        ("tx_id", pa.string()), ("chain", pa.string()), ("period_start", PERIOD),
        ("buyer", pa.string()),
        ("seller", pa.string()), ("buyer_vpp", pa.string()), ("seller_vpp", pa.string()),
        ("wh", pa.int64()), ("kwh", pa.float64()), ("price", pa.int64()),
        ("amount_cents", pa.int64()), ("cross", pa.bool_()), ("status", pa.string()),
        ("reason", pa.string()), ("height", pa.int64()), ("main_height", pa.int64()),
        ("payload", pa.binary()),
    ),
    "audits": _schema(
        ("chain", pa.string()), ("auditor", pa.string()), ("target", pa.string()),
        ("stake", pa.float64()), ("outcome", pa.string()), ("credit_moved", pa.float64()),
        ("money_moved", pa.int64()),
    ),
    "anchors": _schema(
        ("main_height", pa.int64()), ("chain", pa.string()), ("collab_height", pa.int64()),
        ("collab_hash", pa.string()), ("collab_type", pa.int64()), ("ok", pa.bool_()),
    ),
    "energy": _schema(
        ("chain", pa.string()), ("node", pa.string()), ("period_start", PERIOD),
        ("online", pa.bool_()), ("generation_wh", pa.int64()), ("consumption_wh", pa.int64()),
        ("charge_wh", pa.int64()), ("discharge_wh", pa.int64()), ("soc_wh", pa.float64()),
        ("loss_wh", pa.float64()), ("net_wh", pa.int64()), ("sold_wh", pa.int64()),
        ("bought_wh", pa.int64()), ("import_wh", pa.int64()), ("export_wh", pa.int64()),
    ),
    "market": _schema(
        ("chain", pa.string()), ("period_start", PERIOD), ("market", pa.string()),
        ("trades", pa.int64()), ("volume_wh", pa.int64()), ("price_mean", pa.float64()),
        ("price_min", pa.int64()), ("price_max", pa.int64()), ("intra_wh", pa.int64()),
        ("cross_wh", pa.int64()), ("grid_import_wh", pa.int64()),
        ("grid_export_wh", pa.int64()),
    ),
    "balances": _schema(
        ("node", pa.string()), ("money", pa.int64()), ("energy_wh", pa.int64()),
        ("energy_kwh", pa.float64()),
    ),
}
TABLES = tuple(SCHEMAS)


def to_batch(table: str, run_id: str, round_: int, rows: Sequence[dict[str, Any]]) -> pa.RecordBatch:
    """Rows (dicts without run_id/round) as one record batch of ``table``'s schema."""
    schema = SCHEMAS[table]
    columns = {name: [r.get(name) for r in rows] for name in schema.names[2:]}
    columns["run_id"] = [run_id] * len(rows)
    columns["round"] = [round_] * len(rows)
    return pa.RecordBatch.from_pydict({n: columns[n] for n in schema.names}, schema=schema)


def assemble(pieces: Sequence[Mapping[str, pa.RecordBatch]]) -> dict[str, pa.RecordBatch]:
    """A round's tables from its pieces (each a mapping of table to record batch) as one
    record batch per table: each table's in piece order, ``balances`` sorted by node."""
    out = {}
    for name, schema in SCHEMAS.items():
        parts = [p[name] for p in pieces if name in p]
        table = pa.Table.from_batches(parts, schema=schema).combine_chunks()
        if name == "balances":
            table = table.sort_by("node").combine_chunks()
        batches = table.to_batches()
        out[name] = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=schema)
    return out
