"""The benchmark's spine: the method registry, the settings of each method, the runner and its record.

:mod:`pumba.bench.registry` names every method (our model and its peers) with its settings;
:mod:`pumba.bench.runner` runs one of them on one image in a measured child process and writes a
run record (:mod:`pumba.bench.record`); ``pumba run-method`` (:mod:`pumba.bench.cli`) is its command.
"""
