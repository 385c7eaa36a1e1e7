"""Figures of the benchmark: metric box plots, training curves, overlay montages, galleries.

Every function writes one PNG (120 dpi; .pdf and .svg by suffix) atomically and builds its figure
without pyplot, so it is safe in worker processes and needs no display. The modules (plots, montage,
gallery) are imported where used: importing this package must not load matplotlib, whose first import
writes a cache under the user's home directory.
"""
