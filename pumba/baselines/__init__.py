"""Baseline brain extractors (Otsu and GMM floors, BET, deepbet, MindGrab) and the child-process runner.

Each method runs as a child process (see :mod:`pumba.baselines.runner`) so that a crash becomes a
failed run record; :mod:`pumba.baselines.methods` says how each one is started.
"""
