"""hwbench's version, in a module of its own: the harness records it in every result
without importing the package's entry point (``hwbench/__init__``), which sits above it."""

__version__ = "0.1.0"
