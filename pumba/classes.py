"""The networks' label classes: the one definition that the training targets, the losses, the network's output
channels, post-processing and the figures share.

Whole-head model (and the label files of ``pumba generate``): three classes, made from a brain mask by
:func:`pumba.synth.labels.make_target`: :data:`BACKGROUND`, :data:`INTERIOR` (the brain less its thick
boundary) and :data:`BOUNDARY` (the thick boundary: the voxels on either side of the brain's edge). The
network's output channel ``c`` is the logit of class ``c``.

Fine stage of the cascade (:mod:`pumba.infer.cascade`): two classes, background (0) and :data:`BRAIN`.

Kept free of torch and numpy, so that the figures can use the classes without loading torch.
"""

from __future__ import annotations

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
CLASS_NAMES = ("background", "interior", "boundary")
"""Name of each whole-head class, indexed by its value."""
N_CLASSES = len(CLASS_NAMES)
"""Output channels of the whole-head network."""

BRAIN = 1
"""The fine stage's brain class (its class 0 is background)."""
FINE_CLASS_NAMES = ("background", "brain")
N_FINE_CLASSES = len(FINE_CLASS_NAMES)
"""Output channels of the cascade's fine-stage network."""
