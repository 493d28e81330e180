"""Where embedding runs: the local pipeline (``SemanticMoments.iter_embed``, no engine needed) or a
Ray cluster (``engines.ray_data``, optional: ``pip install 'semantic-moments[ray]'``). Nothing in the
local path imports an engine."""

ENGINES = ("local", "ray")
