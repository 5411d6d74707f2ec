"""Fuzzing the stored-run reader: random single-byte flips of block and trade payloads and
random edits of their other columns are all caught by verify, naming the object; and a run
directory holds nothing that could execute on reading (Parquet and JSON only, no pickle)."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from mlts_ray.analysis.load import load_table, read_manifest
from mlts_ray.analysis.verify import VerifyError, verify_tables
from mlts_ray.config import build_config
from mlts_ray.runtime.local import run_local

TRIES = 250  # per kind of tampering and table


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    cfg = build_config({
        "experiment": {"name": "fuzz", "seed": 21, "rounds": 3, "runtime": "local"},
        "topology": {"vpps": 3, "nodes_per_vpp": 12},
        "workload": {"cross_vpp_share": 0.6},
    })
    run = run_local(cfg, tmp_path_factory.mktemp("fuzz"))
    return run, load_table(run, "blocks"), load_table(run, "trades")


def _caught(blocks, trades, named: str) -> bool:
    try:
        verify_tables(21, blocks, trades)
    except VerifyError as err:
        return err.subject.startswith(named)
    return False


def test_the_untouched_tables_verify(stored):
    _, blocks, trades = stored
    assert verify_tables(21, blocks, trades).blocks == len(blocks)


@pytest.mark.parametrize("table", ["blocks", "trades"])
def test_every_single_byte_flip_of_a_payload_is_caught(stored, table):
    _, blocks, trades = stored
    rng = random.Random(table)
    caught = 0
    for _ in range(TRIES):
        df = (blocks if table == "blocks" else trades).copy()
        i = rng.randrange(len(df))
        raw = bytearray(df.at[i, "payload"])
        pos = rng.randrange(len(raw))
        raw[pos] ^= 1 << rng.randrange(8)
        df.at[i, "payload"] = bytes(raw)
        args = (df, trades) if table == "blocks" else (blocks, df)
        caught += _caught(*args, "block " if table == "blocks" else "trade ")
    print(f"\n{table}: {TRIES} byte flips tried, {caught} caught")
    assert caught == TRIES


EDITABLE = {
    "blocks": ["height", "hash", "prev_hash", "merkle_root", "anchor_root", "index_field",
               "type_field", "n_txs", "proposer", "kind", "chain"],
    "trades": ["tx_id", "buyer", "seller", "buyer_vpp", "seller_vpp", "wh", "kwh", "price",
               "amount_cents", "cross", "chain", "height"],
}


def _edit(value, rng):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu"):
        return int(value) + rng.choice([-1, 1])
    if isinstance(value, float):
        return value + 0.001
    text = str(value)
    pos = rng.randrange(len(text))
    return text[:pos] + ("x" if text[pos] != "x" else "y") + text[pos + 1:]


@pytest.mark.parametrize("table", ["blocks", "trades"])
def test_every_value_edit_is_caught(stored, table):
    _, blocks, trades = stored
    rng = random.Random(f"edit-{table}")
    caught = tried = 0
    for _ in range(TRIES):
        df = (blocks if table == "blocks" else trades).copy()
        if table == "trades":
            df = df[df.status == "settled"].reset_index(drop=True)  # edits of placed trades
        i, column = rng.randrange(len(df)), rng.choice(EDITABLE[table])
        df[column] = df[column].astype(object)
        df.at[i, column] = _edit(df.at[i, column], rng)
        tried += 1
        args = (df, trades) if table == "blocks" else (blocks, pd.concat([df, trades[trades.status != "settled"]]))
        try:
            verify_tables(21, *args)
        except VerifyError:
            caught += 1
    print(f"\n{table}: {tried} value edits tried, {caught} caught")
    assert caught == tried


def test_a_run_directory_holds_only_parquet_and_json(stored):
    run, _, _ = stored
    read_manifest(run)
    for path in run.rglob("*"):
        if path.name == ".lock":  # the writer lock: the last writer's pid, as text
            assert path.read_text().strip().isdigit(), path
        elif path.is_file():
            head = path.read_bytes()[:4]
            assert head == b"PAR1" or path.suffix == ".json", path
            assert not head.startswith(b"\x80"), f"{path} looks like a pickle"
