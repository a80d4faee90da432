"""Routes of this area (none yet)."""
