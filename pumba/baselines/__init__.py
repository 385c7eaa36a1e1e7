"""The peers of our model: the floors (Otsu, GMM), BET, deepbet, MindGrab, HD-BET, ROBEX, ANTs, SynthStrip.

Each is a ``python -m pumba.baselines.<module>`` command (:func:`pumba.baselines.main.baseline_main`)
whose settings are declared in the method registry (:mod:`pumba.bench.registry`); the benchmark runs
it in a measured child process (:mod:`pumba.bench.runner`).
"""
