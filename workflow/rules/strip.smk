rule strip:
    """Strip one subject with one method (config['methods']: our models and the peers, one registry); the run is
    recorded with the tool, its version and settings, seconds and peak memory, a failure included.
    """
    input:
        data="results/data/{dataset}",
        files=method_inputs,
    output:
        record="results/predictions/{method}/{dataset}/{subject}.json",
    log:
        "logs/strip/{method}/{dataset}/{subject}.log",
    benchmark:
        "results/benchmarks/strip/{method}/{dataset}/{subject}.tsv"
    wildcard_constraints:
        method="|".join(METHODS) if METHODS else "none",
    conda:
        "../../envs/baselines.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc: PLANS[wc.method].method.mem_mb,
        runtime=lambda wc: PLANS[wc.method].method.runtime_min,
    params:
        tool=lambda wc: PLANS[wc.method].tool,
        flags=lambda wc: shlex.join(PLANS[wc.method].flags),
        mask=lambda wc, output: output.record.replace(".json", ".nii.gz"),
        timeout=config["strip"]["timeout_s"],
        # where a method with downloadable weights (mindgrab) looks for them: the data rules' cache and mirror
        cache=os.path.abspath(config["cache"]),
        mirror=MIRROR,
        download=1 if config["download"] else 0,
    shell:
        "PUMBA_CACHE={params.cache:q} PUMBA_MIRROR={params.mirror:q} PUMBA_DOWNLOAD={params.download} "
        "pumba run-method --method {params.tool} --name {wildcards.method} "
        "-i {input.data}/{wildcards.subject}/image.nii.gz -o {params.mask} --record {output.record} "
        "--dataset {wildcards.dataset} --subject {wildcards.subject} --threads {threads} "
        "--timeout {params.timeout} -- {params.flags} > {log} 2>&1"
