rule train:
    """Train the PUMBA U-Net on synthetic heads generated on the fly (GPU when configured)."""
    input:
        config=repo_path(config["training"]["config"]),
    output:
        model="results/model/pumba/model.pt",
        log_csv="results/model/pumba/train_log.csv",
    log:
        "logs/model/train.log",
    benchmark:
        "results/benchmarks/model/train.tsv"
    conda:
        "../../envs/pumba.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=config["training"]["mem_mb"],
        runtime=config["training"]["runtime_min"],
        gpu=config["training"]["gpus"],
    params:
        out=lambda wc, output: os.path.dirname(output.model),
        device=config["training"]["device"],
    shell:
        "pumba train --config {input.config} --out {params.out} --resume "
        "--device {params.device} --threads {threads} --no-progress > {log} 2>&1"
