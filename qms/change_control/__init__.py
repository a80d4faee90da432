"""Change control: proposed changes, their risk-based approvals, implementation and verification."""
