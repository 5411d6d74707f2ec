from __future__ import annotations

import json
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
VECTORS = TESTS / "vectors"


def load_vectors(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return TESTS.parent
