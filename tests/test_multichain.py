"""Multi-chain MLTS: cross-VPP trades on the main chain, collaborative blocks, anchoring,
``mlts verify`` against tampering, ``mlts query``, conservation (docs/architecture.md sections 4, 8, 9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlts_ray.analysis.query import QueryError, query_trade
from mlts_ray.analysis.verify import VerifyError, verify_run
from mlts_ray.cli import main
from mlts_ray.config import build_config
from mlts_ray.ledger.block import Block
from mlts_ray.runtime.rounds import Rounds
from mlts_ray.runtime.local import run_local

ROUNDS = 4


def _cfg(**sections):
    raw = {
        "experiment": {"name": "multi", "seed": 3, "rounds": ROUNDS, "runtime": "local"},
        "topology": {"vpps": 4, "nodes_per_vpp": 8},
        "workload": {"cross_vpp_share": 0.5},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return build_config(raw)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_local(_cfg(), tmp_path_factory.mktemp("runs"))


def _table(run: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(run / name)


def test_every_settled_cross_trade_is_on_the_main_chain_anchored_and_queryable(run_dir):
    trades, anchors = _table(run_dir, "trades"), _table(run_dir, "anchors")
    cross = trades[trades.cross & (trades.status == "settled")]
    assert len(cross) >= 5 and (cross.chain == "main").all()
    assert (cross.main_height == cross.height).all()
    assert anchors.ok.all() and len(anchors) > 0
    last_main = int(_table(run_dir, "blocks").query("chain == 'main'").height.max())
    anchored = cross[cross.main_height < last_main]
    assert len(anchored) >= 3
    for row in anchored.itertuples():
        path = query_trade(run_dir, row.tx_id)
        sides = {a["side_chain"] for a in path["anchoring"]}
        assert sides == {row.buyer_vpp, row.seller_vpp}
        for a in path["anchoring"]:
            assert a["collaborative_block"]["type"] == row.main_height
            assert a["anchored_by"]["height"] == row.main_height + 1
            hit = anchors[(anchors.chain == a["side_chain"])
                          & (anchors.collab_height == a["collaborative_block"]["height"])]
            assert hit.ok.all() and (hit.main_height == row.main_height + 1).all()
    # the last main block's collaborative blocks wait for the next main block
    for row in cross[cross.main_height == last_main].itertuples():
        with pytest.raises(QueryError, match="not anchored yet"):
            query_trade(run_dir, row.tx_id)


def test_intra_vpp_trades_have_a_side_block_proof(run_dir):
    trades = _table(run_dir, "trades")
    row = trades[~trades.cross & (trades.status == "settled")].iloc[0]
    path = query_trade(run_dir, row.tx_id)
    assert path["block"]["chain"] == row.chain and "anchoring" not in path
    assert path["trade_proof"]["size"] >= 1


def test_collaborative_blocks_follow_each_committed_main_block(run_dir):
    blocks = _table(run_dir, "blocks")
    main_blocks = blocks[blocks.kind == "main"]
    collab = blocks[blocks.kind == "collaborative"]
    assert set(collab.type_field) <= set(main_blocks.height)
    assert (collab.index_field == collab.chain.str.removeprefix("vpp-").astype(int)).all()
    messages = _table(run_dir, "messages")
    sent = messages[messages.phase == "collaborative"]
    assert sent["count"].sum() == len(collab) * (8 - 1)  # the VMC to the VPP's other 7 nodes


def test_query_names_what_is_missing(run_dir):
    with pytest.raises(QueryError, match="no such trade"):
        query_trade(run_dir, "00" * 16)
    assert main(["query", str(run_dir), "--tx", "00" * 16]) == 1


def test_verify_passes_an_untouched_run(run_dir, capsys):
    report = verify_run(run_dir)
    assert report.blocks == len(_table(run_dir, "blocks")) and report.anchors >= ROUNDS - 1
    assert main(["verify", str(run_dir)]) == 0
    assert "ok:" in capsys.readouterr().out


# --- tampering: every edit is caught and named ---------------------------------------------------


def _tampered(run_dir: Path, tmp_path: Path, table: str, edit) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for f in sorted((copy / table).glob("round-*.parquet")):
        t = pq.read_table(f)
        changed = edit(t.to_pandas())
        if changed is not None:
            pq.write_table(pa.Table.from_pandas(changed, schema=t.schema, preserve_index=False), f)
            return copy
    raise AssertionError("nothing to tamper with")


def _flip_collab_payload(df):
    rows = df.index[df.kind == "collaborative"]
    if len(rows) == 0:
        return None
    i = rows[0]
    raw = bytearray(df.at[i, "payload"])
    raw[len(raw) // 2] ^= 0x01
    df.at[i, "payload"] = bytes(raw)
    return df


def _change_kwh(df):
    i = df.index[df.status == "settled"][0]
    df.at[i, "kwh"] = df.at[i, "kwh"] + 0.001
    return df


def _change_wh_and_kwh(df):
    i = df.index[df.status == "settled"][0]
    df.at[i, "wh"] += 1
    df.at[i, "kwh"] = df.at[i, "wh"] / 1000
    return df


def _swap_two_trades(df):
    settled = df.index[df.status == "settled"]
    if len(settled) < 2:
        return None
    a, b = settled[0], settled[1]
    df.loc[[a, b], "payload"] = df.loc[[b, a], "payload"].to_numpy()
    return df


def _edit(column):
    def edit(df):
        rows = df.index[df.kind == "collaborative"]
        if len(rows) == 0:
            return None
        df.at[rows[0], column] += 1
        return df
    return edit


def _reorder_block_body(df):
    for i in df.index[(df.kind == "side") & (df.n_txs >= 2)]:
        block = Block.decode(df.at[i, "payload"])
        swapped = Block(block.header, block.signature, block.txs[::-1])
        df.at[i, "payload"] = swapped.encode()
        return df
    return None


@pytest.mark.parametrize(
    ("table", "edit", "named"),
    [
        ("blocks", _flip_collab_payload, "block vpp-"),
        ("trades", _change_kwh, "trade "),
        ("trades", _change_wh_and_kwh, "trade "),
        ("trades", _swap_two_trades, "trade "),
        ("blocks", _edit("index_field"), "block vpp-"),
        ("blocks", _edit("type_field"), "block vpp-"),
        ("blocks", _reorder_block_body, "block vpp-"),
    ],
    ids=["collab-payload-byte", "trade-kwh", "trade-wh", "swap-trades", "index-field",
         "type-field", "block-body-order"],
)
def test_tampering_is_caught_and_named(run_dir, tmp_path, table, edit, named, capsys):
    bad = _tampered(run_dir, tmp_path, table, edit)
    with pytest.raises(VerifyError) as err:
        verify_run(bad)
    assert err.value.subject.startswith(named), str(err.value)
    assert main(["verify", str(bad)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {err.value.subject}: ")


# --- conservation and main-chain liveness ------------------------------------------------------


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.sampled_from(["pbft", "dce-pbft", "random-committee"]),
       st.floats(0, 0.4), st.floats(0, 1))
def test_money_and_energy_are_conserved_every_round(seed, algorithm, byzantine, share):
    cfg = _cfg(
        experiment={"seed": seed, "rounds": 3},
        topology={"vpps": 3, "nodes_per_vpp": 6},
        consensus={"algorithm": algorithm},
        workload={"cross_vpp_share": share},
        faults={"byzantine_fraction": byzantine, "where": "both",
                "behaviours": ["abandon", "forge", "silent", "equivocate", "false-audit"]},
    )
    rounds = Rounds.local(cfg)
    start = rounds.sim.ledger.totals()
    for rnd in range(3):
        tables = rounds.rows(rnd)
        money = sum(r["money"] for r in tables["balances"])
        energy = sum(r["energy_wh"] for r in tables["balances"])
        assert (money, energy) == start
        # every energy account is empty between periods; only the grid's money may go below
        # zero (it pays feed-in before it bills), a node's only through grid bills, never here
        assert all(r["energy_wh"] == 0 for r in tables["balances"])
        assert min(r["money"] for r in tables["balances"] if r["node"] != "grid") >= 0
        settled = [r for r in tables["trades"] if r["status"] == "settled"]
        assert len({r["tx_id"] for r in settled}) == len(settled)


def test_a_silent_main_chain_primary_is_replaced_by_view_change(tmp_path):
    cfg = _cfg(
        experiment={"rounds": 6},
        # the main primary rotates over every member, so the silent one leads a round
        consensus={"algorithm": "pbft", "pbft_primary": "rotate"},
        faults={"byzantine_fraction": 0.25, "behaviours": ["silent"], "where": "main"},
    )
    consensus = _table(run_local(cfg, tmp_path), "consensus")
    main_rows = consensus[consensus.chain == "main"]
    assert main_rows.committed.all()
    assert (main_rows.views >= 2).any(), main_rows[["round", "primary", "views"]]
    # a round that waited out the silent primary's view is slower than every round that did not
    changed, clean = main_rows[main_rows.views >= 2], main_rows[main_rows.views == 1]
    assert len(clean) and changed.latency_ms.min() > clean.latency_ms.max()
