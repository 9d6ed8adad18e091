"""Bounds on what constant folding builds."""

MAX_FOLDED_BYTES = 4 << 30  # a constant bigger than this is a malformed (or hostile) file
