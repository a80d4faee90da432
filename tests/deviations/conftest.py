"""Fixtures of the deviation tests (shared with tests/capa, defined in
tests.deviations.support)."""
from tests.deviations.support import api, stock, team  # noqa: F401  (fixtures)
