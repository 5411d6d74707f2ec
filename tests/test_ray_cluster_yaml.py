"""cluster.yaml is a Ray cluster-launcher config that Ray's own validator accepts."""

from __future__ import annotations

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config


def test_cluster_yaml_passes_rays_validator(repo_root):
    raw = yaml.safe_load((repo_root / "cluster.yaml").read_text())
    config = prepare_config(raw)
    validate_config(config)  # raises on any schema violation
    types = config["available_node_types"]
    assert config["head_node_type"] in types and len(types) >= 2
    assert config["provider"]["type"] in {"aws", "gcp", "azure"}
    setup = " ".join(config["setup_commands"])
    assert "pip install" in setup and "mlts_ray" in setup  # every node installs the package
