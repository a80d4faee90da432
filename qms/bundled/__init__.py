"""Data shipped with the wheel: config defaults and templates (mapped from the repository's
top-level config/ and templates/ folders in pyproject.toml)."""
from importlib.resources import files
from pathlib import Path


def bundled_path(name: str) -> Path:
    """Filesystem path of a bundled data folder ("config" or "templates")."""
    return Path(str(files(f"qms.bundled.{name}")))
