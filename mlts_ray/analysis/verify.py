"""``mlts verify``: re-check every byte of a stored run and fail on the first bad one.

First the run as files (``run_files``): the manifest bound to the run id, every table file of
every finished round present, of its schema, and bound by the digest chain. Then the chain
itself, below, and last the tables derived from it (``derived``: settlement, balances, trade
statuses, anchors, the consensus rows' block facts).

For each block: decode the payload, recompute its hash, compare every column that restates a
header field, check the Merkle root, the kind's fields, the proposer's signature and the hash
link to the previous block; for main blocks, recompute the anchor root from the collaborative
blocks it anchors. For each trade: decode the payload, recompute the id, compare every column
that restates it, check both signatures and that a settled trade sits in the block it names
(and, when cross-VPP, in both parties' collaborative blocks). Keys are re-derived from the run's
seed and node names (docs/architecture.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlts_ray.analysis.certificates import (
    check_certificates,
    check_credit_roots,
    committees_of,
)
from mlts_ray.analysis.committees import check_committees
from mlts_ray.analysis.credit_replay import check_credit_replay
from mlts_ray.analysis.derived import check_derived
from mlts_ray.analysis.evidence_check import check_evidence
from mlts_ray.analysis.metering_check import check_energy, meter_reports
from mlts_ray.analysis.run_files import VerifyError, read_run
from mlts_ray.errors import MltsError
from mlts_ray.ledger.block import ZERO_HASH, Block, BlockKind
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.names import MAIN
from mlts_ray.mlts.anchoring import anchor_of, anchor_root
from mlts_ray.results.rows import block_columns, trade_columns

__all__ = ["Report", "VerifyError", "verify_run", "verify_tables"]


@dataclass(slots=True)
class Report:
    blocks: int = 0
    trades: int = 0
    signatures: int = 0
    certificates: int = 0  # commit signatures in the blocks' certificates
    credit_roots: int = 0  # blocks whose credit_root the credits table was checked against
    committees: int = 0  # (chain, round) committees recomputed from the credit state
    evidence: int = 0  # proofs on the chain re-judged
    credit_rows: int = 0  # credits rows replayed from the blocks
    credit_unchecked: int = 0  # (chain, round)s at the end whose record is not on the chain yet
    anchors: int = 0
    metered: int = 0  # (chain, period)s whose signed meter report is on the chain
    metered_unsigned: int = 0  # periods at a chain's end taken from the energy table
    chains: set[str] = field(default_factory=set)

    rounds: int = 0
    tables: int = 0
    replayed: int | None = None  # rows re-derived by re-running the rounds (``--replay``)

    def summary(self) -> str:
        return (f"ok: {self.blocks} blocks on {len(self.chains)} chains, {self.trades} trades, "
                f"{self.signatures} signatures, {self.certificates} certificate commits, "
                f"{self.credit_roots} credit roots, {self.committees} committees, "
                f"{self.evidence} proofs, "
                f"{self.credit_rows} credit rows replayed from the blocks "
                f"({self.credit_unchecked} chain-rounds at the end not yet on the chain), "
                f"{self.anchors} anchor roots verified, "
                f"{self.metered} signed meter reports replayed "
                f"({self.metered_unsigned} periods at the end not yet on the chain); "
                f"{self.tables} tables x {self.rounds} rounds bound by their digests, "
                "settlement, grid exchange, balances, energy and market rows, trade statuses, "
                "anchors and consensus facts recomputed"
                + (f"; re-running the rounds gave all {self.replayed} rows again"
                   if self.replayed is not None else ""))


def _fail(subject: str, why: str) -> VerifyError:
    return VerifyError(subject, why)


def _decode(cls, row: pd.Series, subject: str):
    payload = row["payload"]
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _fail(subject, f"payload is {'null' if payload is None else type(payload).__name__}")
    try:
        return cls.decode(bytes(payload))
    except MltsError as err:
        raise _fail(subject, f"payload does not decode: {err.why}") from None


def _check_columns(subject: str, row: pd.Series, expected: dict[str, object]) -> None:
    for column, value in expected.items():
        stored = row[column]
        if pd.isna(stored) if value is None else stored != value:
            raise _fail(subject, f"column {column} = {stored!r} but the payload says {value!r}")


def verify_run(run_dir: str | Path, replay: bool = False) -> Report:
    """Every check; with ``replay``, also re-run the simulation and compare every table."""
    run = read_run(run_dir)
    keys = DerivedKeyRing(run.cfg.experiment.seed)
    report = Report(rounds=run.rounds, tables=len(run.tables))
    by_height = _verify_chain(run.tables["blocks"], run.tables["trades"], keys, report)
    certificates = check_certificates(
        run.tables["blocks"], by_height, committees_of(run.tables["credits"]), keys)
    report.certificates = sum(len(commits) for commits in certificates.values())
    report.credit_roots = check_credit_roots(run.cfg, by_height, run.tables["credits"])
    made = {(b.header.chain, b.header.round): b for b in by_height.values()
            if b.header.kind != BlockKind.COLLABORATIVE}
    metering = meter_reports(run.cfg, run.rounds, by_height, run.tables["energy"], keys)
    report.metered, report.metered_unsigned = metering.signed, metering.unsigned
    committees = check_committees(run.cfg, run.tables["credits"], made, certificates, keys,
                                  offline=metering.offline)
    report.committees = len(committees)
    report.evidence = check_evidence(run.cfg, made, run.tables["credits"], committees, keys)
    traded = check_derived(run.cfg, run.rounds, by_height, run.tables, keys, metering)
    check_energy(run.cfg, run.rounds, metering, run.tables, traded)
    replayed = check_credit_replay(run.cfg, by_height, certificates, committees, run.tables,
                                   keys)
    report.credit_rows, report.credit_unchecked = replayed.rows, replayed.unchecked_rounds
    run.check_bound()
    if replay:
        from mlts_ray.analysis.replay import replay as rerun

        report.replayed = rerun(run)
    return report


def verify_tables(seed: int, blocks: pd.DataFrame, trades: pd.DataFrame) -> Report:
    """The chain checks of ``verify_run`` (blocks and trades) on tables already in memory."""
    report = Report()
    _verify_chain(blocks, trades, DerivedKeyRing(seed), report)
    return report


def _verify_chain(blocks: pd.DataFrame, trades: pd.DataFrame, keys: DerivedKeyRing,
                  report: Report) -> dict[tuple[str, int], Block]:
    for table, df, columns in (("blocks", blocks, ("chain", "height", "hash", "payload")),
                               ("trades", trades, ("tx_id", "chain", "status", "payload"))):
        for column in columns:
            nulls = df[column].isna()
            if nulls.any():
                i = int(nulls.to_numpy().argmax())
                rnd = df["round"].iat[i] if "round" in df else "?"
                raise _fail(f"{table} round {rnd} row {i}", f"{column} is null")
    by_height = _verify_blocks(blocks, keys, report)
    _verify_trades(trades, by_height, keys, report)
    return by_height


def _verify_blocks(df: pd.DataFrame, keys: DerivedKeyRing, report: Report) -> dict[tuple[str, int], Block]:
    out: dict[tuple[str, int], Block] = {}
    for chain, rows in df.sort_values(["chain", "height"]).groupby("chain", sort=True):
        prev = ZERO_HASH
        for expected_height, (_, row) in enumerate(rows.iterrows()):
            block = _verify_block(row, expected_height, prev, keys)
            out[(chain, block.header.height)] = block
            prev = block.hash
            report.blocks += 1
            report.signatures += 1
        report.chains.add(chain)
    _verify_anchor_roots(out, report)
    return out


def _verify_block(row: pd.Series, expected_height: int, prev: bytes, keys: DerivedKeyRing) -> Block:
    subject = f"block {row['chain']}@{row['height']}"
    block = _decode(Block, row, subject)
    h = block.header
    if block.hash.hex() != row["hash"]:
        raise _fail(subject, "hash column does not match the hash of the payload")
    _check_columns(subject, row, block_columns(block))
    if h.height != expected_height:
        raise _fail(subject, f"chain has a gap: height {h.height} where {expected_height} is next")
    if "round" in row and row["round"] != h.round:
        raise _fail(subject, f"stored in round {row['round']} but made in round {h.round}")
    if h.prev_hash != prev:
        raise _fail(subject, "prev_hash does not link to the previous block")
    try:
        block.check(keys)
    except MltsError as err:
        raise _fail(subject, err.why) from None
    return block


def _verify_anchor_roots(blocks: dict[tuple[str, int], Block], report: Report) -> None:
    collab_by_type: dict[int, list[Block]] = {}
    for block in blocks.values():
        if block.header.kind == BlockKind.COLLABORATIVE:
            collab_by_type.setdefault(block.header.type, []).append(block)
    for (chain, height), block in sorted(blocks.items()):
        if chain != MAIN:
            continue
        anchored = collab_by_type.get(height - 1, []) if height > 0 else []
        if anchor_root([anchor_of(b) for b in anchored]) != block.header.anchor_root:
            raise _fail(f"block {chain}@{height}",
                        "anchor_root does not match the collaborative blocks it anchors")
        report.anchors += 1


def _verify_trades(
    df: pd.DataFrame, blocks: dict[tuple[str, int], Block], keys: DerivedKeyRing, report: Report
) -> None:
    in_blocks: dict[str, tuple[str, int, bytes]] = {}
    collab: dict[tuple[str, int], set[bytes]] = {}  # (chain, main height) -> trade ids
    for (chain, height), block in blocks.items():
        if block.header.kind == BlockKind.COLLABORATIVE:
            collab.setdefault((chain, block.header.type), set()).update(block.txs)
        else:
            for raw in block.txs:
                in_blocks[SignedTrade.decode(raw).tx_id] = (chain, height, raw)
    seen: set[str] = set()
    for _, row in df.iterrows():
        _verify_trade(row, in_blocks, collab, keys, report)
        seen.add(row["tx_id"])
    missing = sorted(set(in_blocks) - seen)
    if missing:
        chain, height, _ = in_blocks[missing[0]]
        raise _fail(f"block {chain}@{height}", f"holds trade {missing[0]} that has no row")


def _verify_trade(row, in_blocks, collab, keys: DerivedKeyRing, report: Report) -> None:
    subject = f"trade {row['tx_id']}"
    st = _decode(SignedTrade, row, subject)
    t = st.trade
    if st.tx_id != row["tx_id"]:
        raise _fail(subject, f"payload is trade {st.tx_id}")
    _check_columns(subject, row, trade_columns(st))
    report.trades += 1
    placed = in_blocks.get(st.tx_id)
    if row["status"] == "settled" or not pd.isna(row["height"]):
        if placed is None or (placed[0], placed[1]) != (t.chain, row["height"]):
            raise _fail(subject, f"not in block {t.chain}@{row['height']} as its row says")
        if placed[2] != bytes(row["payload"]):
            raise _fail(subject, "payload differs from the bytes in its block")
        if row["status"] == "settled":
            report.signatures += 2
            bad = st.bad_signer(keys)
            if bad is not None:
                raise _fail(subject, f"bad signature of {bad}")
        if t.cross:
            _check_columns(subject, row, {"main_height": row["height"]})
            for vpp in (t.buyer_vpp, t.seller_vpp):
                if st.trade.id_bytes not in collab.get((vpp, int(row["height"])), set()):
                    raise _fail(subject, f"missing from {vpp}'s collaborative block for main "
                                         f"height {int(row['height'])}")
    elif placed is not None:
        raise _fail(subject, f"status {row['status']} but it sits in block {placed[0]}@{placed[1]}")

