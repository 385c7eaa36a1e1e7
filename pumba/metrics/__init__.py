"""Benchmark metrics: overlap (Dice, sensitivity, specificity, volumes), HD95, and result tables."""

from pumba.metrics.distance import hd95
from pumba.metrics.overlap import dice, sensitivity, specificity, volume_difference
from pumba.metrics.tables import evaluate_pair, summarise

__all__ = [
    "dice",
    "evaluate_pair",
    "hd95",
    "sensitivity",
    "specificity",
    "summarise",
    "volume_difference",
]
