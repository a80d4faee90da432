"""Fixtures of the CAPA tests (the same as tests/deviations, defined in
tests.deviations.support)."""
from tests.deviations.support import api, stock, team  # noqa: F401  (fixtures)
