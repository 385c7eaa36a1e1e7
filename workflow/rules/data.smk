rule prepare_dataset:
    """Fetch (or read from the mirror / installed packages / reference masks) and prepare one dataset."""
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
        reference_masks=(
            f"--reference-masks {REFERENCE_MASKS}" if REFERENCE_MASKS else ""
        ),
        download="" if config["download"] else "--no-download",
    shell:
        "pumba data prepare --dataset {wildcards.dataset} --out results/data "
        "--registry {params.registry} --cache {params.cache} {params.mirror} "
        "{params.reference_masks} {params.download} "
        "> {log} 2>&1"
