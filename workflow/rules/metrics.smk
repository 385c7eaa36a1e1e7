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
            category="Tables",
            labels={"table": "summary"},
        ),
        per_subject=report(
            "results/tables/per_subject.csv",
            caption="../report/per_subject.rst",
            category="Tables",
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
            category="Tables",
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
            category="Tables",
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
