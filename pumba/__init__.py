"""PUMBA: skull stripping of any MRI, trained on purely synthetic data.

Sub-packages follow the benchmark's stages: ``synth`` (generator), ``model`` (network, loss, training),
``infer`` (preprocess, predict, post-process), ``data`` (dataset registry, fetching, preparation),
``baselines``, ``metrics`` and ``figures``.
"""

__version__ = "0.1.0"

CITATION = (
    "Park et al., Skull stripping with purely synthetic data (PUMBA), arXiv:2505.07159. "
    "Implementation: PUMBA-bench."
)
