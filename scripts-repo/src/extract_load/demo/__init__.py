"""The demo's own source: a deterministic event generator and the paginated events API that serves it."""
