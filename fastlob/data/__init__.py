"""Market data: LOBSTER files and synthetic message streams."""
