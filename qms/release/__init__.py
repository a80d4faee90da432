"""Batch release: the release gates, the release check and the release decision
(DESIGN.md "Batch release"; docs/release-gates.md)."""
from __future__ import annotations

from flask import Flask

from qms.settings import config_dir


def init_release(app: Flask) -> None:
    """Load and check config/release.toml (the application refuses to start otherwise),
    and register the batch hooks. (The release-check route joins the API blueprint with the
    other domains' routes, in qms.api.init_api.)"""
    from qms.release import hooks  # noqa: F401  (registrations)
    from qms.release.config import load_release_rules
    from qms.release.service import EXTENSION

    app.extensions[EXTENSION] = load_release_rules(config_dir() / "release.toml")
