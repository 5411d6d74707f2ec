"""The one behaviour registry (issue 14, item 5): every behaviour a config may name is in it,
each does something honest nodes do not in at least one role, and no role's registry knows a
name the config does not."""

from __future__ import annotations

from typing import get_args

import pytest

from mlts_ray.config import Behaviour
from mlts_ray.consensus.audit import AUDITORS
from mlts_ray.consensus.byzantine import WRAPPERS
from mlts_ray.mlts.behaviours import BEHAVIOURS, HONEST
from mlts_ray.mlts.traders import TRADERS


def test_every_config_behaviour_and_honest_are_registered():
    assert set(BEHAVIOURS) == {HONEST, *get_args(Behaviour)}


@pytest.mark.parametrize("name", sorted(set(get_args(Behaviour))))
def test_each_behaviour_differs_from_honest_in_some_role(name):
    honest, b = BEHAVIOURS[HONEST], BEHAVIOURS[name]
    assert (b.consensus is not None or b.trader is not honest.trader
            or b.auditor is not honest.auditor), f"{name} behaves honestly in every role"


def test_no_role_registry_knows_a_name_the_config_does_not():
    known = {HONEST, *get_args(Behaviour)}
    for registry in (WRAPPERS, TRADERS, AUDITORS):
        assert set(registry) <= known, set(registry) - known
