"""Work-arounds for packaging problems of third-party wheels (each isolated, each a no-op when unneeded)."""
