"""The paper's tables, the report's provenance page and its interactive NiiVue viewer.

- :mod:`pumba.report.tables`: Table 1 (datasets), Table 2 (median (IQR) Dice and HD95 with paired tests
  against ours), the runtime and memory table, Table 3 (ablations) and the spread between training seeds;
  each written as CSV, Markdown and LaTeX (:mod:`pumba.report.render`).
- :mod:`pumba.report.provenance`: the page with the config, package versions, seeds, git commit and what
  was skipped and why.
- :mod:`pumba.report.viewer`: one self-contained HTML page per scan with every method's mask in NiiVue.

Modules are imported where used (``pumba --help`` must not load pandas).
"""
