"""Reliability harness for the collector: ``python -m stress.run --help``."""
