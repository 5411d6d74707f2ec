"""Tamper suite: every table and the manifest of a stored run, edited as an attacker would, and
the table / round (or manifest key) `mlts verify` must name (issue 12, item 1).

Two kinds of edit. A *file edit* changes one table file and nothing else: the digest chain or a
derived check must catch it. A *rewritten edit* also rewrites the digest records and the
manifest's head, as someone who knows the format would: then only what is derived from the
chain (settlement, balances, trade statuses, anchors, consensus block facts) can catch it, and
must. What nothing derives (latencies, message counts, credit rows, audit outcomes) is bound by
the digests only: a rewritten edit of those passes the stored run's checks, and ``--replay``
(re-running the rounds) refutes it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlts_ray.analysis.verify import VerifyError, verify_run
from mlts_ray.cli import main
from mlts_ray.config import build_config
from mlts_ray.consensus.messages import Vote, decode_commits, encode_commits
from mlts_ray.ledger.crypto import Identity, SigKind
from mlts_ray.ledger.tx import SignedTrade, Trade
from mlts_ray.runtime.digests import DIGESTS, encode_record, file_digest, record_hash, record_name
from mlts_ray.runtime.local import run_local
from mlts_ray.results.schemas import NULLABLE, SCHEMAS, TABLES

ROUNDS = 5
SETTINGS = ["experiment.runtime=local", f"experiment.rounds={ROUNDS}", "experiment.seed=4",
            "topology.vpps=3", "faults.byzantine_fraction=0.3",
            'faults.behaviours=["abandon","false-audit","forge","silent"]',
            "topology.nodes_per_vpp=14", "workload.cross_vpp_share=0.6"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    run = run_local(build_config({"experiment": {"name": "tamper"}}, SETTINGS),
                    tmp_path_factory.mktemp("runs"))
    verify_run(run)  # the untouched run verifies
    return run


def _file(run: Path, table: str, rnd: int) -> Path:
    return run / table / f"round-{rnd:06d}.parquet"


def _read(run: Path, table: str, rnd: int) -> pd.DataFrame:
    return pq.read_table(_file(run, table, rnd)).to_pandas()


def _write(run: Path, table: str, rnd: int, df: pd.DataFrame) -> None:
    pq.write_table(pa.Table.from_pandas(df, schema=SCHEMAS[table], preserve_index=False),
                   _file(run, table, rnd))


def _rechain(run: Path) -> None:
    """Rewrite every digest record and the manifest head to match the files as they are now."""
    manifest = json.loads((run / "manifest.json").read_text())
    prev = "0" * 64
    for rnd in range(manifest["rounds_done"]):
        files = {t: file_digest(_file(run, t, rnd).read_bytes()) for t in TABLES}
        record = encode_record(rnd, prev, files)
        (run / DIGESTS / record_name(rnd)).write_bytes(record)
        prev = record_hash(record)
    manifest["digest_head"] = prev
    (run / "manifest.json").write_text(json.dumps(manifest))


def _first_round(run: Path, table: str, where) -> tuple[int, pd.DataFrame, int]:
    """The first round whose ``table`` has a row matching ``where``: (round, frame, row)."""
    for rnd in range(ROUNDS):
        df = _read(run, table, rnd)
        hits = df.index[where(df)] if len(df) else []
        if len(hits):
            return rnd, df, int(hits[0])
    raise AssertionError(f"the stored run has no {table} row to edit: change its settings")


def _edit_row(table: str, where, column: str, change):
    def edit(run: Path) -> str:
        rnd, df, i = _first_round(run, table, where)
        df.at[i, column] = change(df.at[i, column])
        _write(run, table, rnd, df)
        return f"{table} round {rnd}"
    return edit


def _delete(table: str, rnd: int = 2):
    def edit(run: Path) -> str:
        _file(run, table, rnd).unlink()
        return f"{table} round {rnd}"
    return edit


def _delete_last_blocks_and_trades(run: Path) -> str:
    for table in ("blocks", "trades"):
        _file(run, table, ROUNDS - 1).unlink()
    return f"blocks round {ROUNDS - 1}"


def _forged_trade_row(run: Path) -> str:
    """A trade nobody signed (an outsider's key), stored as not committed in a round where its
    chain committed a block."""
    rnd, df, i = _first_round(run, "trades", lambda d: d.status == "settled")
    row = df.loc[i].copy()
    t = SignedTrade.decode(row["payload"]).trade
    fake = Trade(t.chain, t.round, t.buyer, t.seller, t.buyer_vpp, t.seller_vpp, t.wh + 1,
                 t.price, t.buy_order, t.sell_order)
    outsider = Identity.derive(999, "outsider")
    forged = SignedTrade(fake, outsider.sign(b"x"), outsider.sign(b"y"))
    row["tx_id"], row["payload"], row["wh"] = forged.tx_id, forged.encode(), fake.wh
    row["kwh"], row["amount_cents"] = fake.wh / 1000, fake.amount_cents
    row["status"], row["reason"], row["height"] = "not-committed", "no block this round", None
    _write(run, "trades", rnd, pd.concat([df, row.to_frame().T], ignore_index=True))
    return f"trades round {rnd}"


def _stray(name: str):
    """A copy of a finished round's file under a name the run did not write."""
    def edit(run: Path) -> str:
        source = _file(run, "trades", 1) if name.endswith(".parquet") else \
            run / "digests" / "round-000001.json"
        shutil.copy(source, run / name)
        return name
    return edit


def _null_block_payload(run: Path) -> str:
    df = _read(run, "blocks", 1)
    df["payload"] = df["payload"].astype(object)
    df.at[0, "payload"] = None
    _write(run, "blocks", 1, df)
    return "blocks round 1"


def _drop_column(run: Path) -> str:
    df = _read(run, "credits", 1).drop(columns=["delta"])
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), _file(run, "credits", 1))
    return "credits round 1"


def _not_parquet(run: Path) -> str:
    _file(run, "messages", 3).write_bytes(b"PAR1 not really")
    return "messages round 3"


def _manifest(change, named: str):
    def edit(run: Path) -> str:
        path = run / "manifest.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
        return named
    return edit


def _set_algorithm(data):
    data["config"]["consensus"]["algorithm"] = "pbft"


def _set_toml(data):
    data["config_toml"] = data["config_toml"].replace('algorithm = "dce-pbft"', 'algorithm = "pbft"')


def _delete_record(run: Path) -> str:
    (run / DIGESTS / record_name(1)).unlink()
    return f"{DIGESTS} round 1"


def _edit_record(run: Path) -> str:
    path = run / DIGESTS / record_name(1)
    path.write_bytes(path.read_bytes().replace(b'"round":1', b'"round":1 '))
    return f"{DIGESTS} round 1"


SETTLED = lambda d: d.status == "settled"  # noqa: E731
FILE_EDITS = {
    "energy import raised": _edit_row("energy", lambda d: d.import_wh > 0, "import_wh",
                                      lambda v: v + 1),
    "energy generation raised": _edit_row("energy", lambda d: d.generation_wh > 0,
                                          "generation_wh", lambda v: v + 100),
    "energy sold raised": _edit_row("energy", lambda d: d.sold_wh > 0, "sold_wh",
                                    lambda v: v + 1),
    "market price edited": _edit_row("market", lambda d: d.trades > 0, "price_max",
                                     lambda v: v + 1),
    "market grid export edited": _edit_row("market", lambda d: d.grid_export_wh > 0,
                                           "grid_export_wh", lambda v: v - 1),
    "anchors ok false": _edit_row("anchors", lambda d: d.ok, "ok", lambda v: False),
    "anchors collab_hash zeroed": _edit_row("anchors", lambda d: d.ok, "collab_hash",
                                            lambda v: "0" * 64),
    "anchors round deleted": _delete("anchors"),
    "balance raised": _edit_row("balances", lambda d: d.node.str.endswith("n-001"), "money",
                                lambda v: v + 100_000),
    "consensus committed flipped": _edit_row("consensus", lambda d: d.committed, "committed",
                                             lambda v: False),
    "consensus safety_violation flipped": _edit_row(
        "consensus", lambda d: ~d.safety_violation, "safety_violation", lambda v: True),
    "consensus latency changed": _edit_row("consensus", lambda d: d.committed, "latency_ms",
                                           lambda v: v / 2),
    "messages count changed": _edit_row("messages", lambda d: d["count"] > 0, "count",
                                        lambda v: v + 1),
    "credits round deleted": _delete("credits"),
    "credit raised": _edit_row("credits", lambda d: d.credit < 90, "credit", lambda v: v + 10),
    "audit outcome changed": _edit_row("audits", lambda d: d.outcome == "dismissed", "outcome",
                                       lambda v: "upheld"),
    "settled trade marked rejected": _edit_row("trades", SETTLED, "status", lambda v: "rejected"),
    "forged trade row, not committed": _forged_trade_row,
    "last round's blocks and trades deleted": _delete_last_blocks_and_trades,
    "null block payload": _null_block_payload,
    "a column dropped": _drop_column,
    "not a Parquet file": _not_parquet,
    "digest record deleted": _delete_record,
    "digest record edited": _edit_record,
    "run_id column changed": _edit_row("messages", lambda d: d["count"] >= 0, "run_id",
                                       lambda v: v + "x"),
    "manifest algorithm changed": _manifest(_set_algorithm,
                                            "manifest.json: config.consensus.algorithm"),
    "manifest config_toml changed": _manifest(_set_toml, "manifest.json: config_toml"),
    "manifest seed changed": _manifest(lambda d: d.update(seed=5), "manifest.json: seed"),
    "manifest rounds_done lowered": _manifest(lambda d: d.update(rounds_done=ROUNDS - 1),
                                              "manifest.json: rounds_done"),
    "manifest says interrupted a round early": _manifest(
        lambda d: d.update(rounds_done=ROUNDS - 1, status="interrupted"),
        "manifest.json: digest_head"),
    "manifest head rewritten": _manifest(lambda d: d.update(digest_head="f" * 64),
                                         "manifest.json: digest_head"),
    "manifest not JSON": lambda run: (run / "manifest.json").write_text("{") and "manifest.json",
    # files the run did not write (each read by a bare pd.read_parquet of the table's folder)
    "a copy of a round file": _stray("trades/round-000001 (copy).parquet"),
    "a round file misnamed": _stray("trades/round-00001.parquet"),
    "a round beyond the manifest's": _stray(f"trades/round-{ROUNDS:06d}.parquet"),
    "a digest record beyond the manifest's": _stray(f"digests/round-{ROUNDS:06d}.json"),
    "a new folder": lambda run: (run / "notes").mkdir() or "notes",
    "a file at the top": lambda run: (run / "README.txt").write_text("x") and "README.txt",
}


@pytest.mark.parametrize("case", sorted(FILE_EDITS))
def test_an_edit_of_any_table_or_the_manifest_is_named(case, stored, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    named = FILE_EDITS[case](run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject.startswith(named), f"{case}: {err.value}"
    assert main(["verify", str(run)]) == 1
    out = capsys.readouterr().err
    assert out.startswith(f"error: {err.value.subject}: ") and "Traceback" not in out


# Edits whose digests are rewritten too: the chain itself must refute them.
REWRITTEN = {
    "balance raised": ("balances round", False),
    "settled trade marked rejected": ("trades round", False),
    "anchors ok false": ("anchors round", False),
    "energy import raised": ("energy round", False),
    "energy generation raised": ("energy round", False),
    "energy sold raised": ("energy round", False),
    "market price edited": ("market round", False),
    "market grid export edited": ("market round", False),
    "anchors collab_hash zeroed": ("anchors round", False),
    "consensus committed flipped": ("consensus round", False),
    "forged trade row, not committed": ("trades round", False),
    # re-judged from the chain's facts by the credit replay
    "audit outcome changed": ("audits round", False),
    # not derivable from the chain: bound by the digests only, refuted by a re-run (--replay)
    "consensus latency changed": ("consensus round", True),
    "messages count changed": ("messages round", True),
}


@pytest.mark.parametrize("case", sorted(REWRITTEN))
def test_an_edit_with_rewritten_digests_is_refuted_by_the_chain(case, stored, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    FILE_EDITS[case](run)
    _rechain(run)
    named, needs_replay = REWRITTEN[case]
    if needs_replay:
        verify_run(run)  # the stored run alone cannot refute it ...
    with pytest.raises(VerifyError) as err:
        verify_run(run, replay=needs_replay)  # ... re-running its rounds does
    assert err.value.subject.startswith(named) and "row" in err.value.subject, str(err.value)


def test_a_rewritten_run_with_no_edit_still_verifies(stored, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    _rechain(run)  # the suite's rewriting is faithful: failures above come from the edits
    assert verify_run(run).rounds == ROUNDS


def test_replay_of_an_untouched_run_gives_every_row_again(stored, capsys):
    assert main(["verify", "--replay", str(stored)]) == 0
    assert "re-running the rounds gave all" in capsys.readouterr().out


# --- certificates (issue 14, item 1): edits with rewritten digests, refuted by the checks -------

def _certificate_edit(change):
    """Re-encode the first side block's certificate after ``change(commits, block_row)``."""
    def edit(run: Path) -> str:
        rnd, df, i = _first_round(run, "blocks", lambda d: d.kind == "side")
        commits = list(decode_commits(df.at[i, "certificate"]))
        df.at[i, "certificate"] = encode_commits(tuple(change(commits, df.loc[i])))
        _write(run, "blocks", rnd, df)
        return f"block {df.at[i, 'chain']}@{df.at[i, 'height']}"
    return edit


def _broken_signature(commits, row):
    commits[0] = replace(commits[0], sig=bytes(64))
    return commits


def _outsider(commits, row):
    """A valid signature by a node of the chain that did not sit on that round's committee."""
    from mlts_ray.ledger.crypto import DerivedKeyRing

    keys = DerivedKeyRing(4)
    signers = {c.sender for c in commits}
    chain = row["chain"]
    outsider = next(f"{chain}/n-{i:03d}" for i in range(1, 99) if f"{chain}/n-{i:03d}" not in signers)
    c = commits[0]
    commits[0] = Vote(c.kind, c.chain, c.height, c.view, c.digest, outsider).signed(
        keys.identity(outsider))
    return commits


def _unseat_a_signer(run: Path) -> str:
    """The credits table says a certificate's signer was not on the committee."""
    rnd, blocks, i = _first_round(run, "blocks", lambda d: d.kind == "side")
    signer = decode_commits(blocks.at[i, "certificate"])[0].sender
    credits = _read(run, "credits", rnd)
    credits.loc[credits.node == signer, "in_committee"] = False
    _write(run, "credits", rnd, credits)
    return f"block {blocks.at[i, 'chain']}@{blocks.at[i, 'height']}"


def _no_certificate(run: Path) -> str:
    rnd, df, i = _first_round(run, "blocks", lambda d: d.kind == "main")
    df.at[i, "certificate"] = b""
    _write(run, "blocks", rnd, df)
    return f"block main@{df.at[i, 'height']}"


CERTIFICATE_EDITS = {
    "a commit signature broken": (_certificate_edit(_broken_signature), "bad commit signature"),
    "a commit dropped below q": (_certificate_edit(lambda c, row: c[1:]), "commits, the committee"),
    "a signer twice": (_certificate_edit(lambda c, row: [*c[:-1], c[0]]), "twice"),
    "a signer from off the committee": (_certificate_edit(_outsider), "was not on round"),
    "a prepare instead of a commit": (
        _certificate_edit(lambda c, row: [replace(c[0], kind=SigKind.PREPARE), *c[1:]]),
        "holds a prepare"),
    "a committee member changed in credits": (_unseat_a_signer, "was not on round"),
    "the certificate removed": (_no_certificate, "certificate is missing"),
}


@pytest.mark.parametrize("case", sorted(CERTIFICATE_EDITS))
def test_a_certificate_edit_is_refuted_naming_the_block(case, stored, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    edit, why = CERTIFICATE_EDITS[case]
    named = edit(run)
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject == named and why in err.value.why, str(err.value)


def test_a_credit_edit_with_rewritten_digests_is_refuted_by_the_credit_root(stored, tmp_path):
    """The next block's header commits to the credit table its round began with, so a changed
    credit value no longer needs a re-run to be caught (issue 14, item 4)."""
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    FILE_EDITS["credit raised"](run)
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject.startswith("credits round ") and " chain " in err.value.subject
    assert "credit_root" in err.value.why


def test_a_credit_status_edit_is_refuted_by_the_credit_root(stored, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    rnd, df, i = _first_round(run, "credits", lambda d: d.status == "active")
    df.at[i, "status"] = "suspended"
    _write(run, "credits", rnd, df)
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject == f"credits round {rnd} chain {df.at[i, 'chain']}", str(err.value)


def test_a_seat_added_to_a_committee_is_refuted_by_the_credit_state(stored, tmp_path):
    """The committee is recomputed from the credit state the chain commits to (issue 14,
    item 4): a node seated that selection did not choose is named by chain and round."""
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    rnd, df, i = _first_round(run, "credits", lambda d: ~d.in_committee.astype(bool)
                              & (d.chain != "main") & ~d.node.str.endswith("vmc"))
    df.at[i, "in_committee"] = True
    _write(run, "credits", rnd, df)
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject == f"credits round {rnd} chain {df.at[i, 'chain']}", str(err.value)
    assert "not the one its credit state prescribes" in err.value.why


@pytest.mark.parametrize("column, change", [
    ("delta", lambda v: v + 1.0), ("role", lambda v: "primary" if v != "primary" else "ordinary"),
    ("trading_credit", lambda v: v - 1.0),
])
def test_a_credit_row_edit_is_refuted_by_replaying_credit_from_the_blocks(
        column, change, stored, tmp_path):
    """No credit_root covers a row's change or role, nor the last round's rows: the replay of
    every chain's credit from its certificates and round records does (issue 14, item 4)."""
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    rnd, df, i = _first_round(run, "credits", lambda d: d.chain != "main")
    df.at[i, column] = change(df.at[i, column])
    _write(run, "credits", rnd, df)
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject == f"credits round {rnd} chain {df.at[i, 'chain']}", str(err.value)
    assert df.at[i, "node"] in err.value.why or "credit_root" in err.value.why


def test_the_stored_runs_credit_is_replayed_from_its_blocks(stored):
    report = verify_run(stored)
    chains = 3 + 1
    assert report.credit_unchecked == chains  # each chain's last round: its record is pending
    assert report.credit_rows > 0


def _nulled(run: Path, table: str, column: str, value) -> tuple[int, int] | None:
    """Set ``column`` of the first row of ``table``'s first non-empty round to ``value`` (null
    or NaN), in Arrow directly (pandas would turn a null int into a float); the round and row."""
    for rnd in range(ROUNDS):
        stored = pq.read_table(_file(run, table, rnd))
        if stored.num_rows:
            values = stored.column(column).to_pylist()
            values[0] = value
            i = stored.schema.get_field_index(column)
            field = stored.schema.field(i)
            stored = stored.set_column(i, field, pa.array(values, type=field.type))
            pq.write_table(stored, _file(run, table, rnd))
            return rnd, 0
    return None


NULLS = [(t, f.name) for t in TABLES for f in SCHEMAS[t] if f.name not in NULLABLE.get(t, ())]
NANS = [(t, f.name) for t in TABLES for f in SCHEMAS[t] if pa.types.is_floating(f.type)]


def test_a_null_in_any_column_that_is_never_null_is_named_with_digests_rewritten(stored, tmp_path,
                                                                                   capsys):
    """Every such column of every table (``schemas.NULLABLE`` lists the others): verify names
    the table, round, row and column, exits 1 and prints no traceback -- a null
    ``credits.node`` used to end verify in a Python traceback."""
    assert len(NULLS) > 100
    for table, column in NULLS:
        run = tmp_path / f"{table}-{column}"
        shutil.copytree(stored, run)
        where = _nulled(run, table, column, None)
        if where is None:
            continue  # the table has no row in this run
        _rechain(run)
        with pytest.raises(VerifyError) as err:
            verify_run(run)
        assert err.value.subject == f"{table} round {where[0]} row 0", (table, column, err.value)
        assert err.value.why == f"{column} is null", (table, column, err.value)
        shutil.rmtree(run)
    run = tmp_path / "cli"
    shutil.copytree(stored, run)
    _nulled(run, "credits", "status", None)
    _rechain(run)
    assert main(["verify", str(run)]) == 1
    out = capsys.readouterr().err
    assert out.startswith("error: credits round ") and "Traceback" not in out


@pytest.mark.parametrize(("table", "column"), NANS)
def test_a_nan_in_any_float_column_is_named(stored, tmp_path, table, column):
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    where = _nulled(run, table, column, float("nan"))
    if where is None:
        pytest.skip(f"no {table} row in the stored run")
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject == f"{table} round {where[0]} row 0"
    assert err.value.why == f"{column} is NaN"


def test_the_loaders_read_exactly_the_files_verify_accepts(stored, tmp_path):
    """A stray copy of a round's file is named by verify and read by no loader: the table
    has the run's own rows, once each."""
    from mlts_ray.analysis.load import load_run, load_table

    run = tmp_path / "run"
    shutil.copytree(stored, run)
    before = load_table(run, "trades")
    for name in ("trades/round-000001 (copy).parquet", "trades/round-00001.parquet",
                 f"trades/round-{ROUNDS:06d}.parquet"):
        shutil.copy(_file(run, "trades", 1), run / name)
    assert len(before) and len(load_table(run, "trades")) == len(before)
    assert len(load_run(run, "trades")) == len(before)
    assert load_table(run, "trades").tx_id.is_unique
    (run / "report").mkdir()  # what mlts report writes is known, not stray
    (run / "report" / "report.md").write_text("# report")
    for name in ("trades/round-000001 (copy).parquet", "trades/round-00001.parquet",
                 f"trades/round-{ROUNDS:06d}.parquet"):
        (run / name).unlink()
    verify_run(run)


def _repeated(table: str, where, change=None):
    """The first matching row of ``table`` stored a second time (``change`` edits the copy)."""
    def edit(run: Path) -> str:
        rnd, df, i = _first_round(run, table, where)
        row = df.loc[i].copy()
        if change is not None:
            change(row)
        _write(run, table, rnd, pd.concat([df, row.to_frame().T], ignore_index=True))
        return f"{table} round {rnd} row {len(df)}"
    return edit


def _second_status(row) -> None:
    row["status"], row["reason"] = "rejected", "excluded by primary"


REPEATS = {
    "a consensus row twice": _repeated("consensus", lambda d: d.committed),
    "a credits row twice": _repeated("credits", lambda d: d.credit >= 0),
    "a trade twice, the copy rejected": _repeated("trades", SETTLED, _second_status),
    "a messages row twice": _repeated("messages", lambda d: d["count"] > 0),
    "a balances row twice": _repeated("balances", lambda d: d.money >= 0),
}


@pytest.mark.parametrize("case", sorted(REPEATS))
def test_a_repeated_row_is_named_even_with_digests_rewritten(case, stored, tmp_path):
    """One row per key and round (``schemas.KEYS``): a duplicated consensus row and a trade
    listed a second time as rejected beside its settled self used to pass plain verify."""
    run = tmp_path / "run"
    shutil.copytree(stored, run)
    named = REPEATS[case](run)
    _rechain(run)
    with pytest.raises(VerifyError) as err:
        verify_run(run)
    assert err.value.subject == named, str(err.value)
    assert err.value.why.startswith("repeats row "), str(err.value)
