"""The run directory's ``manifest.json`` (docs/architecture.md section 8): its one reader and
checker. ``RunSink`` is its only writer; a resume (``RunSink.reopen``), ``mlts verify``
(``analysis.run_files``) and the table loaders read it here, and the first two check it the
same way (``checked``): a JSON object, every key of its type, a valid config, ``rounds_done``
within the config's rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlts_ray.config import Config, from_toml
from mlts_ray.errors import ConfigError, MltsError, RunError
from mlts_ray.runtime.storage import Location, locate

MANIFEST = "manifest.json"
# what every manifest holds, as RunSink writes it
FIELDS = (("run_id", str), ("status", str), ("rounds_done", int), ("config_toml", str),
          ("config", dict))


def read_manifest(run_dir: str | Path | Location) -> dict[str, Any]:
    """The manifest as stored (a loader's read: unchecked but for being JSON)."""
    path = (run_dir if isinstance(run_dir, Location) else locate(run_dir)) / MANIFEST
    if not path.is_file():
        raise RunError(str(run_dir), f"not a run directory (no {MANIFEST})")
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise RunError(str(path), f"unreadable manifest: {err}") from None


def checked(root: Location, where: str, error: type[MltsError] = RunError,
            purpose: str = "") -> tuple[dict[str, Any], Config]:
    """The manifest of ``root`` and its config, or ``error`` naming ``where`` (the subject's
    prefix) and the key at fault; ``purpose`` ends each reason (", cannot resume")."""
    try:
        manifest = json.loads((root / MANIFEST).read_bytes())
    except (OSError, ValueError) as err:
        raise error(where, f"unreadable manifest{purpose}: {err}") from None
    if not isinstance(manifest, dict):
        raise error(where, f"not a JSON object{purpose}")
    for key, kind in FIELDS:
        value = manifest.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise error(f"{where}: {key}", f"missing or not a {kind.__name__}{purpose}")
    try:
        cfg = from_toml(manifest["config_toml"])
    except ConfigError as err:
        raise error(f"{where}: config_toml", f"not a valid config{purpose}: {err}") from None
    if not 0 <= manifest["rounds_done"] <= cfg.experiment.rounds:
        raise error(f"{where}: rounds_done", f"{manifest['rounds_done']} is outside "
                    f"0..{cfg.experiment.rounds}{purpose}")
    return manifest, cfg
