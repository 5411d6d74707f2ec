"""House rules that keep the project what docs/architecture.md says it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PROTOCOL_LAYERS = ["ledger", "net", "consensus", "mlts"]
CLOCK_CALLS = {("time", "time"), ("time", "monotonic"), ("time", "perf_counter"),
               ("datetime", "now"), ("time", "time_ns")}


def _protocol_files(root: Path) -> list[Path]:
    files = [f for layer in PROTOCOL_LAYERS for f in (root / "mlts_ray" / layer).rglob("*.py")]
    assert files, "no protocol-layer files found"
    return files


def test_no_unused_imports_undefined_or_shadowed_names(repo_root):
    """Pyflakes' rules (ruff's F): what they find is a bug or dead code, never a matter of
    style (an unused import, an undefined name, a loop variable shadowing an import)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F",
                           "--output-format", "concise", "--no-cache", "mlts_ray", "tests"],
                          cwd=repo_root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_protocol_layers_never_import_ray_or_read_the_clock(repo_root):
    for path in _protocol_files(repo_root):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                mods = []
            assert not any(m == "ray" or m.startswith("ray.") for m in mods), path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                base = node.func.value
                if isinstance(base, ast.Name):
                    assert (base.id, node.func.attr) not in CLOCK_CALLS, f"{path}:{node.lineno}"


# Imports point down the layers (docs/architecture.md section 2): ledger < net < consensus <
# mlts (the model) < population (who acts how) < results (the collector) < runtime <
# analysis < cli.
ORDER = ["ledger", "net", "consensus", "mlts", "population", "results", "runtime", "analysis"]


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


def test_no_layer_imports_one_above_it(repo_root):
    for i, layer in enumerate(ORDER):
        above = tuple(f"mlts_ray.{up}" for up in ORDER[i + 1:]) + ("mlts_ray.cli",)
        for path in (repo_root / "mlts_ray" / layer).rglob("*.py"):
            bad = {m for m in _imports(path) if m.startswith(above)}
            assert not bad, f"{path.relative_to(repo_root)} imports {sorted(bad)}"


def test_every_package_is_a_named_layer(repo_root):
    packages = {p.name for p in (repo_root / "mlts_ray").iterdir()
                if p.is_dir() and any(p.glob("*.py"))}
    assert packages == set(ORDER), packages ^ set(ORDER)


def test_the_root_modules_sit_below_every_layer(repo_root):
    """``errors`` and ``names`` import nothing of the package; ``config`` only those two (and
    the behaviour registry lazily, when a config is validated)."""
    for name, allowed in (("errors", set()), ("names", set()),
                          ("config", {"mlts_ray.errors", "mlts_ray.names",
                                      "mlts_ray.population.registry"})):
        mine = {m for m in _imports(repo_root / "mlts_ray" / f"{name}.py")
                if m.startswith("mlts_ray")}
        assert mine <= allowed, (name, mine - allowed)


def test_the_model_imports_neither_arrow_nor_the_collector_nor_the_population(repo_root):
    """The model (and everything under it) reports facts: it knows neither tables nor who
    is faulty. Only the collector, the runtimes and the analysis import pyarrow."""
    for layer in PROTOCOL_LAYERS:
        for path in (repo_root / "mlts_ray" / layer).rglob("*.py"):
            bad = {m for m in _imports(path)
                   if m.split(".")[0] == "pyarrow" or m.startswith(("mlts_ray.results",
                                                                     "mlts_ray.population"))}
            assert not bad, f"{path.relative_to(repo_root)} imports {sorted(bad)}"
    arrow = {path.relative_to(repo_root / "mlts_ray").parts[0]
             for path in (repo_root / "mlts_ray").rglob("*.py")
             if any(m.split(".")[0] == "pyarrow" for m in _imports(path))}
    assert arrow <= {"results", "runtime", "analysis"}, arrow


def _readme_commands(repo_root: Path) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)\n```", (repo_root / "README.md").read_text(), re.S)
    return blocks[:2]


def test_readme_opens_with_run_and_test_commands_and_ci_runs_the_test_one(repo_root):
    run_cmd, test_cmd = _readme_commands(repo_root)
    assert "mlts " in run_cmd and "pytest" in test_cmd
    ci_lines = [
        line for line in (repo_root / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_lines == [test_cmd]


def test_shared_vectors_copied_unchanged(repo_root):
    shared = repo_root.parent / "shared" / "vectors"
    if not shared.is_dir():
        pytest.skip("no ../shared/vectors beside this checkout")
    for name in ("rfc6962_merkle.json", "rfc8032_ed25519.json"):
        assert (shared / name).read_bytes() == (repo_root / "tests" / "vectors" / name).read_bytes()


def test_public_names_import_as_written():
    from mlts_ray.config import load_config  # noqa: F401
    from mlts_ray.errors import ConfigError, MltsError

    from mlts_ray.ledger.crypto import Identity, verify  # noqa: F401
    from mlts_ray.ledger.merkle import merkle_proof, merkle_root, verify_proof  # noqa: F401

    assert issubclass(ConfigError, MltsError)


def test_errors_survive_pickling_with_their_subject():
    import pickle

    from mlts_ray.errors import ConfigError, RunError, SettlementError

    for err in (RunError("vpp-0 round 1", "boom"), SettlementError("ab12", "replay", "again")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err)
        assert (back.subject, back.why) == (err.subject, err.why)
    cfg = ConfigError("a.b", "bad")
    cfg.problems = [("a.b", "bad"), ("c.d", "worse")]
    assert pickle.loads(pickle.dumps(cfg)).problems == cfg.problems


def test_a_vote_pickles_without_its_process_memos():
    import pickle

    from mlts_ray.consensus.messages import Vote
    from mlts_ray.ledger.crypto import Identity, KeyRing, SigKind

    me = Identity.derive(0, "a")
    vote = Vote(SigKind.COMMIT, "vpp-0", 1, 0, bytes(32), "a").signed(me)
    assert vote.valid(KeyRing.of([me]))
    back = pickle.loads(pickle.dumps(vote))
    assert back == vote and back._checked is None and back._body is None


def test_the_results_page_shows_what_reproduce_publishes_and_nothing_stale(repo_root):
    """Every figure and table docs/results.md links exists, and every committed figure is on the
    page (a figure left behind by a renamed sweep would go on being committed unseen)."""
    docs = repo_root / "docs"
    page = (docs / "results.md").read_text()
    linked = set(re.findall(r"\]\((figures/[^)]+\.png)\)", page))
    assert linked, "the results page shows no figure"
    missing = sorted(f for f in linked if not (docs / f).is_file())
    assert not missing, f"docs/results.md links figures that are not committed: {missing}"
    committed = {f"figures/{p.name}" for p in (docs / "figures").glob("*.png")}
    assert not committed - linked, f"committed figures not on the page: {sorted(committed - linked)}"
    tables = set(re.findall(r"`(docs/tables/[^`]+\.md)`", page))
    assert all((repo_root / t).is_file() for t in tables), tables
