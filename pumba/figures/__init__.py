"""Figures of the benchmark: metric box plots, training curves, overlay montages, galleries.

Every function writes one PNG (120 dpi; .pdf and .svg by suffix) atomically and builds its figure
without pyplot, so it is safe in worker processes and needs no display.
"""

from pumba.figures.gallery import find_synth_pairs, gallery_figure, synth_gallery
from pumba.figures.montage import montage_figure, overlay_montage
from pumba.figures.plots import metric_figure, plot_metric, plot_training, training_figure

__all__ = [
    "find_synth_pairs",
    "gallery_figure",
    "metric_figure",
    "montage_figure",
    "overlay_montage",
    "plot_metric",
    "plot_training",
    "synth_gallery",
    "training_figure",
]
