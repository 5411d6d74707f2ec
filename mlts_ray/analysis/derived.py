"""The tables ``mlts verify`` recomputes from the chain and compares row by row:

- **settlement**: the ledger's own ``Settlement`` replays every period in the order a round
  applies it, from the starting balances the config gives: the metered surpluses (the side
  chains' meter reports, ``metering_check``), every stored block's trades (side chains in VPP
  order, then the main chain), the grid's close of every metered node -- which must import and
  export exactly what the report says -- and the audits' money moves; each trade row's status
  and reason and every ``balances`` row must be what the replay gives;
- **trade statuses** of trades in no block: ``not-committed`` only where the chain has no block
  that round, ``rejected`` for a bad signature only with a signature that is bad, ``excluded by
  primary`` only with good ones and a block that left them out;
- **anchors**: each main block at height h anchors the collaborative blocks made for height h-1
  (in VPP order); every anchors row is recomputed from the blocks;
- **consensus rows' block facts**: ``committed`` exactly where the chain has a block made that
  round, and then its ``height`` and ``txs``.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from mlts_ray.analysis.metering_check import Metering
from mlts_ray.analysis.run_files import VerifyError
from mlts_ray.config import Config
from mlts_ray.ledger.block import Block, BlockKind
from mlts_ray.ledger.crypto import DerivedKeyRing
from mlts_ray.ledger.settlement import Settlement
from mlts_ray.ledger.tx import SignedTrade
from mlts_ray.names import MAIN
from mlts_ray.mlts.anchoring import anchor_of
from mlts_ray.mlts.metering import tally
from mlts_ray.mlts.simulation import opening_ledger
from mlts_ray.mlts.topology import vpp_layout

Blocks = dict[tuple[str, int], Block]


def _vpp_number(chain: str) -> int:
    return int(chain.split("-")[1]) if chain != MAIN else 1 << 62


def _where(df: pd.DataFrame, i: int, table: str) -> str:
    """``table round r row k``: k counts rows within the round's file."""
    rnd = int(df["round"].iat[i])
    k = int((df["round"].iloc[:i] == rnd).sum())
    return f"{table} round {rnd} row {k}"


Traded = dict[int, dict[str, tuple[int, int]]]  # round -> node -> (sold, bought) Wh


def check_derived(cfg: Config, rounds: int, blocks: Blocks, tables: dict[str, pd.DataFrame],
                  keys: DerivedKeyRing, metering: Metering) -> Traded:
    """Every check above; returns what each node sold and bought per round, as replayed."""
    made = {(b.header.chain, b.header.round): b for b in blocks.values()
            if b.header.kind != BlockKind.COLLABORATIVE}
    traded = _check_settlement(cfg, rounds, made, tables, keys, metering)
    _check_unplaced_trades(made, tables["trades"], keys)
    _check_anchors(blocks, tables["anchors"])
    _check_consensus(made, tables["consensus"])
    return traded


def _check_settlement(cfg: Config, rounds: int, made: dict[tuple[str, int], Block],
                      tables: dict[str, pd.DataFrame], keys: DerivedKeyRing,
                      metering: Metering) -> Traded:
    trades, audits, balances = tables["trades"], tables["audits"], tables["balances"]
    row_of = {tx: i for i, tx in enumerate(trades["tx_id"])}
    by_round: dict[int, list[Block]] = defaultdict(list)
    for (chain, rnd), block in made.items():
        by_round[rnd].append(block)
    ledger = opening_ledger(cfg, keys)
    chains = [vpp_layout(cfg.topology, v).chain for v in range(cfg.topology.vpps)]
    traded: Traded = {}
    for rnd in range(rounds):
        ledger.forget_before(rnd)  # as the simulation's ledger does: the replay guard's bound
        for chain in chains:
            for m in metering.reports[(chain, rnd)].values():
                try:
                    ledger.mint(m.node, max(0, m.net_wh))
                except Exception as err:  # a node with no account
                    raise VerifyError(f"meter report {chain} round {rnd}", str(err)) from None
        moves: list[tuple[str, str, int]] = []
        for block in sorted(by_round.get(rnd, []), key=lambda b: _vpp_number(b.header.chain)):
            included = [SignedTrade.decode(raw) for raw in block.txs]
            for st, err in zip(included, ledger.settle_each(included, committed=True)):
                want = ("settled", "") if err is None else ("rejected", err.reason)
                if err is None:
                    moves.append((st.trade.seller, st.trade.buyer, st.trade.wh))
                i = row_of.get(st.tx_id)
                if i is None:
                    raise VerifyError(f"block {block.ref}", f"holds trade {st.tx_id} that has no row")
                got = (trades["status"].iat[i], trades["reason"].iat[i])
                if got != want or trades["height"].iat[i] != block.header.height:
                    raise VerifyError(_where(trades, i, "trades"),
                                      f"trade {st.tx_id} is {got[0]!r} ({got[1]!r}) at height "
                                      f"{trades['height'].iat[i]} but settling the chain makes "
                                      f"it {want[0]!r} ({want[1]!r}) at {block.header.height}")
        traded[rnd] = tally(moves)
        _close_periods(cfg, ledger, metering, chains, rnd)
        _replay_audits(ledger, audits, rnd)
        _compare_balances(ledger, balances, rnd)
    return traded


def _close_periods(cfg: Config, ledger: Settlement, metering: Metering, chains: list[str],
                   rnd: int) -> None:
    w = cfg.workload
    for chain in chains:
        for m in metering.reports[(chain, rnd)].values():
            got = ledger.close(m.node, max(0, -m.net_wh), w.feed_in_cents, w.retail_cents)
            if got != (m.import_wh, m.export_wh):
                raise VerifyError(f"meter report {chain} round {rnd}",
                                  f"{m.node} imports {m.import_wh} and exports {m.export_wh} Wh "
                                  f"but its position less its settled trades leaves "
                                  f"{got[0]} and {got[1]}")


def _replay_audits(ledger: Settlement, audits: pd.DataFrame, rnd: int) -> None:
    rows = audits[audits["round"] == rnd]
    for i, row in zip(rows.index, rows.itertuples(index=False)):
        try:
            if row.money_moved > 0:
                ledger.transfer_money(row.target, row.auditor, int(row.money_moved))
            elif row.money_moved < 0:
                ledger.transfer_money(row.auditor, row.target, -int(row.money_moved))
        except Exception as err:  # an account that does not exist, a non-number
            raise VerifyError(_where(audits, int(i), "audits"), f"cannot move its money: {err}") \
                from None


def _compare_balances(ledger: Settlement, balances: pd.DataFrame, rnd: int) -> None:
    rows = balances[balances["round"] == rnd]
    want = sorted(ledger.balances().items())
    if len(rows) != len(want):
        raise VerifyError(f"balances round {rnd}", f"{len(rows)} rows for {len(want)} accounts")
    for k, (row, (node, (money, wh))) in enumerate(zip(rows.itertuples(index=False), want)):
        stored = (row.node, row.money, row.energy_wh, row.energy_kwh)
        if stored != (node, money, wh, wh / 1000):
            raise VerifyError(f"balances round {rnd} row {k}",
                              f"{stored[0]} holds {stored[1]} cents and {stored[2]} Wh but the "
                              f"settled trades and audits give {node}: {money} cents, {wh} Wh")


def _check_unplaced_trades(made: dict[tuple[str, int], Block], trades: pd.DataFrame,
                           keys: DerivedKeyRing) -> None:
    placed = {tx for b in made.values() for tx in (SignedTrade.decode(r).tx_id for r in b.txs)}
    for i, row in enumerate(trades.itertuples(index=False)):
        if row.tx_id in placed:
            continue
        where = _where(trades, i, "trades")
        has_block = (row.chain, row.round) in made
        st = SignedTrade.decode(bytes(row.payload))
        if row.status == "not-committed":
            if has_block:
                raise VerifyError(where, f"says {row.chain} committed no block in round "
                                  f"{row.round}, but it did")
        elif row.status == "rejected" and row.reason == "bad-signature":
            if st.bad_signer(keys) is None:
                raise VerifyError(where, "says rejected for a bad signature, but both "
                                  "signatures are good")
        elif row.status == "rejected" and row.reason == "excluded by primary":
            if not has_block or st.bad_signer(keys) is not None:
                raise VerifyError(where, "says excluded by the primary, but "
                                  + ("no block was made" if not has_block else "a signature is bad"))
        else:
            raise VerifyError(where, f"status {row.status!r} ({row.reason!r}) for a trade in no block")
        if not pd.isna(row.height):
            raise VerifyError(where, f"height {row.height} for a trade in no block")


def _check_anchors(blocks: Blocks, anchors: pd.DataFrame) -> None:
    collab: dict[int, list[Block]] = defaultdict(list)
    for block in blocks.values():
        if block.header.kind == BlockKind.COLLABORATIVE:
            collab[block.header.type].append(block)
    want = []
    for (chain, height), main in sorted(blocks.items()):
        if chain != MAIN or height == 0:
            continue
        for b in sorted(collab.get(height - 1, []), key=lambda b: (_vpp_number(b.header.chain),
                                                                  b.header.height)):
            a = anchor_of(b)
            want.append((main.header.round, height, a.chain, a.height, a.block_hash.hex(),
                         a.main_type, True))
    got = list(anchors[["round", "main_height", "chain", "collab_height", "collab_hash",
                        "collab_type", "ok"]].itertuples(index=False, name=None))
    for i, (g, w) in enumerate(zip(got, want)):
        if tuple(g) != w:
            raise VerifyError(_where(anchors, i, "anchors"),
                              f"is {g[1:]} but the blocks give {w[1:]} (round {w[0]})")
    if len(got) != len(want):
        i = min(len(got), len(want))
        subject = _where(anchors, i, "anchors") if i < len(got) else f"anchors round {want[i][0]}"
        raise VerifyError(subject, f"{len(got)} anchor rows but the blocks give {len(want)}")


def _check_consensus(made: dict[tuple[str, int], Block], consensus: pd.DataFrame) -> None:
    rows = consensus[["chain", "round", "committed", "height", "txs"]]
    seen = set()
    for i, row in enumerate(rows.itertuples(index=False)):
        where = _where(consensus, i, "consensus")
        block = made.get((row.chain, row.round))
        seen.add((row.chain, row.round))
        if bool(row.committed) != (block is not None):
            raise VerifyError(where, f"committed is {row.committed} but {row.chain} "
                              + ("made a block" if block is not None else "made no block")
                              + f" in round {row.round}")
        if block is not None:
            h = block.header
            # not the primary: a block proposed in one view and committed in a later one keeps
            # its proposer, while the row names the primary of the deciding view
            if (row.height, row.txs) != (h.height, h.n_txs):
                raise VerifyError(where, f"height {row.height} and txs {row.txs} but its block "
                                  f"is height {h.height} with {h.n_txs} txs")
    missing = sorted(set(made) - seen)
    if missing:
        raise VerifyError(f"consensus round {missing[0][1]}", f"no row for {missing[0][0]}, "
                          "which made a block that round")
