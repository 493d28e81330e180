"""Bridges to tools video collections already live in; each module imports its tool, nothing else
in the package does (``fiftyone.py``: ``pip install 'semantic-moments[fiftyone]'``)."""
