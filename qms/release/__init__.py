"""Batch release: the release gates, the release check and the release decision
(DESIGN.md "Batch release"; docs/release-gates.md)."""
from __future__ import annotations

from flask import Flask

from qms.settings import config_dir


def init_release(app: Flask) -> None:
    """Load and check config/release.toml (the application refuses to start otherwise),
    register the batch hooks, and add the release-check route. Called before the API
    blueprint is registered."""
    from qms.release import api, hooks  # noqa: F401  (routes; registrations)
    from qms.release.config import load_release_rules
    from qms.release.service import EXTENSION

    app.extensions[EXTENSION] = load_release_rules(config_dir() / "release.toml")
