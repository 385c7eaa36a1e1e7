# Our model: the first method of tool pumba that runs here (the one every other method is compared with).
OURS = next((m for m in METHODS if PLANS[m].tool == "pumba"), METHODS[0])
METHOD_LIST = ",".join(CONFIG_METHODS)
# The datasets that can be had here (their manifests exist after the data rules).
AVAILABLE = [d for d in DATASETS if DATASET_PLANS[d].available]


rule evaluate:
    """Score one method against the reference masks: one row per subject (failures included)."""
    input:
        records=lambda wc: records(wc.method),
        data=dataset_dirs,
    output:
        "results/tables/per_subject/{method}.csv",
    log:
        "logs/metrics/evaluate_{method}.log",
    benchmark:
        "results/benchmarks/metrics/evaluate_{method}.tsv"
    conda:
        "../../envs/pumba.yaml"
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
    shell:
        "pumba evaluate --records {input.records} --manifest {params.manifests} --out {output} "
        "> {log} 2>&1"


rule summarise:
    """One row per (method, dataset): n, failures, mean and median Dice and HD95, seconds, peak memory."""
    input:
        expand("results/tables/per_subject/{method}.csv", method=METHODS),
    output:
        summary=report(
            "results/tables/summary.csv",
            caption="../report/summary.rst",
            category="Accuracy",
            labels={"table": "summary"},
        ),
        per_subject=report(
            "results/tables/per_subject.csv",
            caption="../report/per_subject.rst",
            category="Accuracy",
            labels={"table": "per subject"},
        ),
    log:
        "logs/metrics/summarise.log",
    conda:
        "../../envs/pumba.yaml"
    shell:
        "pumba summarise --inputs {input} --out {output.summary} --per-subject {output.per_subject} "
        "> {log} 2>&1"


rule dataset_table:
    """Which datasets were run, which were not, and why."""
    input:
        dataset_dirs,
    output:
        report(
            "results/tables/datasets.csv",
            caption="../report/datasets.rst",
            category="Data",
            labels={"table": "datasets"},
        ),
    log:
        "logs/metrics/datasets.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        statuses=lambda wc, input: [f"{d}/status.json" for d in input],
        registry=REGISTRY,
    shell:
        "pumba data table --registry {params.registry} --status {params.statuses} --out {output} "
        "> {log} 2>&1"


rule method_table:
    """Every configured method: tool, version, settings, whether it ran (and why not), accuracy and cost."""
    input:
        per_subject="results/tables/per_subject.csv",
        records=[r for m in METHODS for r in records(m)],
    output:
        report(
            "results/tables/methods.csv",
            caption="../report/methods.rst",
            category="Runtime",
            labels={"table": "methods"},
        ),
    log:
        "logs/metrics/methods.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        plans=json.dumps(
            {
                name: {
                    "tool": plan.tool,
                    "settings": plan.settings,
                    "skipped": plan.skipped,
                }
                for name, plan in PLANS.items()
            }
        ),
    shell:
        "pumba method-table --per-subject {input.per_subject} --records {input.records} "
        "--plans {params.plans:q} --out {output} > {log} 2>&1"


rule table_datasets:
    """Table 1: species, modality, pathology, subjects, voxel size, mask provenance and licence per dataset."""
    input:
        data=dataset_dirs,
        registry=REGISTRY,
    output:
        csv=report(
            "results/tables/table1_datasets.csv",
            caption="../report/table1.rst",
            category="Data",
            labels={"table": "Table 1: datasets"},
        ),
        md="results/tables/table1_datasets.md",
        tex="results/tables/table1_datasets.tex",
    log:
        "logs/metrics/table1.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        prefix=lambda wc, output: output.csv.removesuffix(".csv"),
    shell:
        "pumba tables datasets --registry {input.registry} --data {input.data} --out {params.prefix} "
        "> {log} 2>&1"


rule table_accuracy:
    """Table 2: median (IQR) Dice and HD95 per dataset and method, Wilcoxon against ours with Holm."""
    input:
        "results/tables/per_subject.csv",
    output:
        csv=report(
            "results/tables/table2_accuracy.csv",
            caption="../report/table2.rst",
            category="Accuracy",
            subcategory="Table 2",
            labels={"table": "Table 2: accuracy (CSV)"},
        ),
        md=report(
            "results/tables/table2_accuracy.md",
            caption="../report/table2.rst",
            category="Accuracy",
            subcategory="Table 2",
            labels={"table": "Table 2: accuracy (Markdown)"},
        ),
        tex="results/tables/table2_accuracy.tex",
    log:
        "logs/metrics/table2.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        prefix=lambda wc, output: output.csv.removesuffix(".csv"),
        ours=OURS,
        methods=METHOD_LIST,
    shell:
        "pumba tables accuracy --table {input} --ours {params.ours} --methods {params.methods} "
        "--out {params.prefix} > {log} 2>&1"


rule table_runtime:
    """Wall seconds per scan and peak memory per method, training time of the models trained here."""
    input:
        per_subject="results/tables/per_subject.csv",
        methods="results/tables/methods.csv",
        training=[f"results/benchmarks/model/train_{m}.tsv" for m in TRAINED],
    output:
        csv=report(
            "results/tables/runtime.csv",
            caption="../report/runtime.rst",
            category="Runtime",
            labels={"table": "runtime and memory"},
        ),
        md="results/tables/runtime.md",
        tex="results/tables/runtime.tex",
    log:
        "logs/metrics/runtime.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        prefix=lambda wc, output: output.csv.removesuffix(".csv"),
        methods=METHOD_LIST,
        training=lambda wc, input: " ".join(
            f"--training {m}={t}" for m, t in zip(TRAINED, input.training)
        ),
    shell:
        "pumba tables runtime --table {input.per_subject} --method-table {input.methods} "
        "{params.training} --methods {params.methods} --out {params.prefix} > {log} 2>&1"


rule provenance:
    """The report's provenance page: config, package versions, seeds, git commit, what was skipped and why."""
    input:
        datasets="results/tables/datasets.csv",
        methods="results/tables/methods.csv",
    output:
        report(
            "results/report/provenance.html",
            caption="../report/provenance.rst",
            category="Data",
            labels={"table": "provenance"},
        ),
    log:
        "logs/metrics/provenance.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        config=json.dumps(config),
        repo=ROOT,
    shell:
        "pumba report provenance --config-json {params.config:q} --repo {params.repo} "
        "--datasets {input.datasets} --method-table {input.methods} --out {output} > {log} 2>&1"
