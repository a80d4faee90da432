"""Inspection: versioned inspection plans, AQL sampling, inspection lots, results and usage decisions."""
