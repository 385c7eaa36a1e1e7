# Development runs, outside the default target: `snakemake ablation --cores all` trains one model per arm of
# config["ablation"]["arms"] (config/ablation/<arm>.yaml) and scores them all on the prepared datasets.


use rule train as train_arm with:
    input:
        config=repo_path(f"{config['ablation']['config_dir']}/{{arm}}.yaml"),
    output:
        model="results/ablation/{arm}/model.pt",
        log_csv="results/ablation/{arm}/train_log.csv",
    log:
        "logs/ablation/train_{arm}.log",
    benchmark:
        "results/benchmarks/ablation/train_{arm}.tsv"
    wildcard_constraints:
        arm="[A-Za-z0-9_-]+",
    threads: config["ablation"]["threads"]


rule ablation_scores:
    """Dice, HD95 and false-positive/negative volumes of every arm's model on every prepared scan."""
    input:
        models=expand("results/ablation/{arm}/model.pt", arm=config["ablation"]["arms"]),
        data=dataset_dirs,
    output:
        report(
            "results/ablation/scores.csv",
            caption="../report/ablation.rst",
            category="Ablation",
        ),
    log:
        "logs/ablation/scores.log",
    benchmark:
        "results/benchmarks/ablation/scores.tsv"
    conda:
        "../../envs/pumba.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
    shell:
        "pumba validate --model {input.models} --manifest {params.manifests} --out {output} "
        "--threads {threads} > {log} 2>&1"


rule ablation:
    """Target: the ablation table."""
    input:
        "results/ablation/scores.csv",
