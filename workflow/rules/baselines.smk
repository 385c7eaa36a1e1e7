rule run_baseline:
    """Strip one subject with one baseline; a crash or timeout is recorded as a failure, not raised."""
    input:
        data="results/data/{dataset}",
    output:
        record="results/predictions/{method}/{dataset}/{subject}.json",
    log:
        "logs/baselines/{method}/{dataset}/{subject}.log",
    benchmark:
        "results/benchmarks/baselines/{method}/{dataset}/{subject}.tsv"
    wildcard_constraints:
        method="|".join(BASELINES) if BASELINES else "none",
    conda:
        "../../envs/baselines.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        mask=lambda wc, output: output.record.replace(".json", ".nii.gz"),
        timeout=config["baselines"]["timeout_s"],
        # where a method with downloadable weights (mindgrab) looks for them: the data rules' cache and mirror
        cache=os.path.abspath(config["cache"]),
        mirror=MIRROR,
        download=1 if config["download"] else 0,
    shell:
        "PUMBA_CACHE={params.cache:q} PUMBA_MIRROR={params.mirror:q} PUMBA_DOWNLOAD={params.download} "
        "pumba run-method --method {wildcards.method} "
        "-i {input.data}/{wildcards.subject}/image.nii.gz -o {params.mask} --record {output.record} "
        "--dataset {wildcards.dataset} --subject {wildcards.subject} --threads {threads} "
        "--timeout {params.timeout} > {log} 2>&1"
