"""The safety campaign at small size: no violation with at most f faulty members, the checker
always tells the truth, and beyond f it does find violations (the campaign has teeth)."""

from __future__ import annotations

from mlts_ray.cli import main
from mlts_ray.runtime.campaign import campaign, run_schedule, schedule


def test_safety_holds_at_f_and_breaks_detectably_at_f_plus_1():
    result = campaign(300, seed=7)
    assert result["f"]["schedules"] == result["f+1"]["schedules"] == 300
    assert result["f"]["safety_violations"] == 0
    assert result["f"]["checker_wrong"] == result["f+1"]["checker_wrong"] == 0
    assert result["f+1"]["safety_violations"] >= 1
    # only equivocation can split honest nodes: the others are crash-like or caught by signatures
    assert all("equivocate" in mix for mix in result["f+1"]["violations_by_behaviour_mix"])


def test_reliable_links_at_f_always_decide():
    for i in range(150):
        s = schedule(11, i, beyond_f=False)
        if s["loss"] or s["partition"]:
            continue
        violation, truthful, decided, complete = run_schedule(s)
        assert decided and complete and truthful and not violation, s


def test_the_command_prints_tallies_and_exits_zero(tmp_path, capsys):
    out = tmp_path / "safety.json"
    assert main(["safety", "--schedules", "20", "--seed", "3", "--json", str(out)]) == 0
    assert '"safety_violations": 0' in capsys.readouterr().out and out.exists()
