"""Evaluation datasets: the registry (``registry``), getting files (``fetch``), preparing them
(``prepare``) and the ``pumba data`` command (``cli``).

Kept import-free so that ``pumba --help`` does not load numpy or nibabel.
"""
