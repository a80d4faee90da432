"""Deviations: planned and unplanned departures from procedure, their investigation and closure."""
