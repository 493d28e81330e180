"""``python -m semantic_moments.cli``."""

from . import entry_point

entry_point()
