"""Energy resources with physics (issue 16, first step): pvlib PV, BDEW 2025 load profiles from
demandlib, a battery serving its own node -- checked against closed forms, the profiles' own
annual integral and a naive battery oracle."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlts_ray.config import build_config
from mlts_ray.errors import ConfigError
from mlts_ray.mlts import energy

E = build_config({}).energy
DAY = 24 * 60 // E.period_minutes


def test_pv_is_zero_at_night_peaks_near_solar_noon_and_fits_a_berlin_clear_day():
    clear = E.model_copy(update=dict(clear_sky_index=1.0))
    wh = energy.pv_wh_per_kwp(clear, 1, "vpp-0", DAY)
    times = energy.periods(clear, DAY)
    assert wh[times.hour < 3].sum() == 0 and wh[times.hour >= 23].sum() == 0
    # solar noon in Berlin in June is about 13:10 CEST
    assert 12 <= times[int(np.argmax(wh))].hour <= 14
    # a clear June day in Berlin: 6-8 kWh per kWp before losses (PVGIS clear-sky); less 14 %
    assert 5.0 <= wh.sum() / 1000 <= 7.5
    winter = clear.model_copy(update=dict(start="2026-12-21T00:00"))
    # a clear winter solstice: 7.5 h of low sun, under half a clear June day even tilted 35 deg
    assert energy.pv_wh_per_kwp(winter, 1, "vpp-0", DAY).sum() < wh.sum() / 2


def test_weather_is_one_draw_per_site_and_day_and_seeded():
    a = energy.pv_wh_per_kwp(E, 1, "vpp-0", 3 * DAY)
    assert np.array_equal(a, energy.pv_wh_per_kwp(E, 1, "vpp-0", 3 * DAY))
    days = a.reshape(3, DAY).sum(axis=1)
    assert len(set(days.round(6))) == 3  # days differ
    assert not np.array_equal(a, energy.pv_wh_per_kwp(E, 1, "vpp-1", 3 * DAY))


def test_a_household_load_integrates_to_its_annual_kwh_and_sits_in_the_h0_band():
    res = energy.Resources("n", 0.0, "h25", 4000.0, 0.0, 0.0)
    year = E.model_copy(update=dict(start="2026-01-01T00:00", load_noise=0.0))
    wh = energy.load_wh(year, 1, res, 365 * DAY)
    assert wh.sum() / 1000 == pytest.approx(4000, rel=0.02)
    # a 4,000 kWh household draws tens to a few hundred Wh per quarter hour (BDEW H0: 56-179)
    assert 20 <= np.percentile(wh, 5) and np.percentile(wh, 95) <= 300


def test_load_noise_keeps_the_mean_and_differs_per_node():
    res = energy.Resources("n", 0.0, "h25", 4000.0, 0.0, 0.0)
    quiet = energy.load_wh(E.model_copy(update=dict(load_noise=0.0)), 1, res, 7 * DAY)
    noisy = energy.load_wh(E, 1, res, 7 * DAY)
    other = energy.load_wh(E, 1, dataclasses.replace(res, node="m"), 7 * DAY)
    assert noisy.sum() == pytest.approx(quiet.sum(), rel=0.05)
    assert not np.array_equal(noisy, other)


def test_resources_follow_the_shares_and_ranges():
    drawn = [energy.draw_resources(E, 3, f"vpp-0/n-{i:03d}") for i in range(2000)]
    pv = [r for r in drawn if r.pv_kwp > 0]
    assert abs(len(pv) / len(drawn) - E.pv_share) < 0.04
    assert all(E.pv_kwp_min <= r.pv_kwp <= E.pv_kwp_max for r in pv)
    assert all(r.battery_kwh == 0 for r in drawn if r.pv_kwp == 0)
    batteries = [r for r in pv if r.battery_kwh > 0]
    assert abs(len(batteries) / len(pv) - E.battery_share) < 0.06
    assert all(r.battery_kw == pytest.approx(r.battery_kwh * E.battery_c_rate) for r in batteries)
    business = [r for r in drawn if r.load_class == "g25"]
    assert abs(len(business) / len(drawn) - E.business_share) < 0.03
    assert energy.draw_resources(E, 3, "vpp-0/n-001") == drawn[1]  # a stream per node


@settings(max_examples=200, deadline=None)
@given(capacity=st.floats(0, 20_000), power=st.floats(1, 10_000), efficiency=st.floats(0.5, 1),
       nets=st.lists(st.floats(-5_000, 5_000), min_size=1, max_size=40))
def test_a_battery_never_leaves_its_bounds_and_conserves_energy(capacity, power, efficiency, nets):
    battery = energy.Battery(capacity, power, efficiency)
    stored_in = given_out = 0.0
    for net in nets:
        before = battery.soc_wh
        left = battery.step(net, 0.25)
        assert -1e-6 <= battery.soc_wh <= capacity + 1e-6
        moved = net - left  # what the battery took (> 0) or gave (< 0)
        assert abs(moved) <= power * 0.25 + 1e-6
        assert (left >= 0) == (net >= 0) or abs(left) < 1e-9  # it never turns a side around
        one_way = math.sqrt(efficiency) if capacity else 1.0
        if moved > 0:
            stored_in += moved
            assert battery.soc_wh == pytest.approx(before + moved * one_way, abs=1e-6)
        elif moved < 0:
            given_out -= moved
            assert battery.soc_wh == pytest.approx(before + moved / one_way, abs=1e-6)
    # what came out is at most what went in, less the losses both ways
    assert given_out <= stored_in * efficiency + 1e-6


@pytest.mark.parametrize("key, value, named", [
    ("timezone", "Mars/Olympus", "energy.timezone"),
    ("start", "21 June 2026", "energy.start"),
    ("start", "2026-06-21T00:00+02:00", "energy.start"),
    ("pv_kwp_min", 20.0, "energy.pv_kwp_min"),
    ("feed_in_cents", 50, "energy.feed_in_cents"),
])
def test_bad_energy_settings_are_refused_by_name(key, value, named):
    with pytest.raises(ConfigError) as err:
        build_config({"energy": {key: value}})
    assert err.value.subject == named


def test_tables_carry_the_period_each_round_trades_in(tmp_path):
    import datetime

    from mlts_ray.analysis.load import load_table
    from mlts_ray.runtime.local import run_local

    cfg = build_config({"experiment": {"rounds": 3, "runtime": "local"},
                        "energy": {"start": "2026-03-29T01:30", "period_minutes": 30}})
    run = run_local(cfg, tmp_path)
    utc = datetime.timezone.utc
    # the night the clocks go forward in Berlin: 01:30 CET is 00:30 UTC, and the periods run on
    # in UTC (02:00 CET, then 03:30 CEST -- the hour that does not exist is skipped)
    want = [datetime.datetime(2026, 3, 29, 0, 30, tzinfo=utc) + datetime.timedelta(minutes=30 * r)
            for r in range(3)]
    for table in ("consensus", "trades"):
        df = load_table(run, table)
        got = df.groupby("round").period_start.unique()
        assert [list(v) for v in got] == [[w] for w in want], table
