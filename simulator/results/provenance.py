"""Provenance (SPEC §4): which fansim made a run, from what command, with which overrides, and
the fully resolved scenario (``scenario.yaml``) that reproduces it."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..scenario.model import Scenario

SCENARIO_FILENAME = "scenario.yaml"


def fansim_version() -> str:
    """The installed fansim's version ('unknown' when run from a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fansim")
    except PackageNotFoundError:
        return "unknown"


def provenance(scenario: Scenario, replications: int, command: str | None) -> dict[str, Any]:
    """The summary's provenance fields."""
    return {
        "fansim_version": fansim_version(),
        "command": command,
        "overrides": scenario.overrides,
        "replications": replications,
    }


def scenario_yaml(scenario: Scenario, seed: int, replications: int) -> str:
    """The resolved scenario as YAML, with the run's seed and replications: ``fansim run`` on
    this text reproduces the run."""
    from ruamel.yaml import YAML

    data = scenario.resolved_data() | {"seed": seed, "replications": replications}
    sets = ", ".join(f"{k}={v!r}" for k, v in scenario.overrides.items()) or "none"
    out = io.StringIO()
    out.write(
        f"# The scenario of this run, resolved by fansim {fansim_version()}: every default filled\n"
        f"# in and the overrides applied (from {scenario.source}; overrides: {sets}).\n"
        "# Data file paths are absolute. Reproduce the run with: fansim run scenario.yaml\n"
    )
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # one line per value
    yaml.sort_base_mapping_type_on_output = False  # keep the scenario's key order
    yaml.dump(data, out)
    return out.getvalue()
