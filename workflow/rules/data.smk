checkpoint prepare_dataset:
    """Fetch (or read from the mirror / installed packages) and prepare one dataset from the registry."""
    output:
        directory("results/data/{dataset}"),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "results/benchmarks/data/{dataset}.tsv"
    conda:
        "../../envs/pumba.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        registry=REGISTRY,
        cache=config["cache"],
        mirror=f"--mirror {MIRROR}" if MIRROR else "",
        download="" if config["download"] else "--no-download",
    shell:
        "pumba data prepare --dataset {wildcards.dataset} --out results/data "
        "--registry {params.registry} --cache {params.cache} {params.mirror} {params.download} "
        "> {log} 2>&1"
