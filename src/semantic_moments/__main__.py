"""``python -m semantic_moments`` runs the command line, like the ``semantic-moments`` script."""

from .cli import entry_point

if __name__ == "__main__":
    entry_point()
