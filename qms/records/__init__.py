"""Controlled records: the versioned record base and its snapshots (models), the declarative
workflows (workflow), the one generic path for creating, editing and transitioning records
(service), and the generic transitions and history endpoints (api)."""
