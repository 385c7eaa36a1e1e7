rule strip_model:
    """Strip one subject with one of our models (config['models']: release weights or a model trained by this
    workflow); the run is recorded, failure included."""
    input:
        data="results/data/{dataset}",
        model=lambda wc: model_file(wc.method),
    output:
        record="results/predictions/{method}/{dataset}/{subject}.json",
    log:
        "logs/infer/{method}/{dataset}/{subject}.log",
    benchmark:
        "results/benchmarks/infer/{method}/{dataset}/{subject}.tsv"
    wildcard_constraints:
        method="|".join(MODELS) if MODELS else "none",
    conda:
        "../../envs/pumba.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        mask=lambda wc, output: output.record.replace(".json", ".nii.gz"),
        timeout=config["inference"]["timeout_s"],
    shell:
        "pumba run-method --method pumba --name {wildcards.method} --model {input.model} "
        "-i {input.data}/{wildcards.subject}/image.nii.gz -o {params.mask} --record {output.record} "
        "--dataset {wildcards.dataset} --subject {wildcards.subject} --threads {threads} "
        "--timeout {params.timeout} > {log} 2>&1"
