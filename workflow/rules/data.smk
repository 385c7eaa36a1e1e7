rule fetch_dataset:
    """Fetch one dataset into the cache: files from the mirror or the web, a collection's archives, S3
    objects or OpenNeuro snapshot (resumed when interrupted, checked by size and checksum), or the user's
    manual copy. A dataset that cannot be had here is recorded with the reason; a failed download fails.
    """
    output:
        "results/fetched/{dataset}.json",
    log:
        "logs/data/fetch_{dataset}.log",
    benchmark:
        "results/benchmarks/data/fetch_{dataset}.tsv"
    conda:
        "../../envs/pumba.yaml"
    resources:
        mem_mb=1000,
        runtime=600,
    params:
        sources=lambda wc: source_flags(wc.dataset),
        download="" if config["download"] else "--no-download",
        timeout=config["fetch"]["timeout_s"],
        retries=config["fetch"]["retries"],
    shell:
        "pumba data fetch --dataset {wildcards.dataset} --record {output} {params.sources} "
        "{params.download} --timeout {params.timeout} --retries {params.retries} --no-progress "
        "> {log} 2>&1"


rule prepare_dataset:
    """Convert one fetched dataset from its publisher's layout: 3-D images, binary masks on the image grid,
    manifest.tsv and status.json (config subjects: the first N only).
    """
    input:
        "results/fetched/{dataset}.json",
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
        runtime=120,
    params:
        sources=lambda wc: source_flags(wc.dataset),
        download="" if config["download"] else "--no-download",
        subjects=lambda wc: (
            f"--subjects {SUBSETS[wc.dataset]}" if wc.dataset in SUBSETS else ""
        ),
    shell:
        "pumba data prepare --dataset {wildcards.dataset} --out results/data {params.sources} "
        "{params.download} {params.subjects} --no-progress > {log} 2>&1"
