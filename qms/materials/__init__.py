"""Materials, suppliers, lots and batches, and the genealogy between them (DESIGN.md
"Domain"): what came in from whom, what went into which batch, and the recall-scope trace."""
