"""Pure, torch-free analysis of Lightning code: import resolution, per-file facts, cursor context.

Nothing here talks to a client; everything is unit-testable with plain strings.
"""
