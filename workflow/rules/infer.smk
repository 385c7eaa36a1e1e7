rule strip_pumba:
    """Strip one subject with the model trained by this workflow; the run is recorded, failure included."""
    input:
        data="results/data/{dataset}",
        model="results/model/pumba/model.pt",
    output:
        record="results/predictions/pumba/{dataset}/{subject}.json",
    log:
        "logs/infer/pumba/{dataset}/{subject}.log",
    benchmark:
        "results/benchmarks/infer/pumba/{dataset}/{subject}.tsv"
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
        "pumba run-method --method pumba --model {input.model} "
        "-i {input.data}/{wildcards.subject}/image.nii.gz -o {params.mask} --record {output.record} "
        "--dataset {wildcards.dataset} --subject {wildcards.subject} --threads {threads} "
        "--timeout {params.timeout} > {log} 2>&1"
