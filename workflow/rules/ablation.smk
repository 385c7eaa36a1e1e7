# Development runs, outside the default target: `snakemake ablation --cores all` trains one model per arm of
# config["ablation"]["arms"] (<config_dir>/<arm>.yaml) for config["ablation"]["steps"] steps and scores them
# all on the prepared datasets.


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
    params:
        steps=f"--steps {config['ablation']['steps']}",


rule ablation_scores:
    """Dice, HD95 and false-positive/negative volumes of every arm's model on every prepared scan."""
    input:
        models=expand("results/ablation/{arm}/model.pt", arm=config["ablation"]["arms"]),
        data=dataset_dirs,
    output:
        report(
            "results/ablation/scores.csv",
            caption="../report/ablation.rst",
            category="Ablations",
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
    """Target: the ablation tables (the arms' scores and Table 3)."""
    input:
        "results/ablation/scores.csv",
        "results/tables/table3_ablation.csv",


# Inference arms of our model (config["methods"][OURS]'s weights): as the default run strips (infer-default, which
# the others are read against), each geometry mode, no test-time flips, and the authors' post-processing
# instead of ours.
INFERENCE_ARMS = {
    "infer-default": "",
    "infer-resize": "--mode resize",
    "infer-transform": "--mode transform",
    "infer-no-tta": "--no-tta",
    "infer-pumba-postprocess": "--postprocess pumba",
}
ABLATION_REFERENCE = config["ablation"].get("reference", config["ablation"]["arms"][0])
SEED_ARMS = config["ablation"].get("seed_arms", [])


rule ablation_inference_scores:
    """Our shipped model scored on every prepared scan with one inference setting changed (geometry, TTA)."""
    input:
        model=lambda wc: PLANS[OURS].settings["weights"],
        data=dataset_dirs,
    output:
        "results/ablation/{infer_arm}.csv",
    log:
        "logs/ablation/{infer_arm}.log",
    benchmark:
        "results/benchmarks/ablation/{infer_arm}.tsv"
    wildcard_constraints:
        infer_arm="|".join(INFERENCE_ARMS),
    conda:
        "../../envs/pumba.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
        flags=lambda wc: INFERENCE_ARMS[wc.infer_arm],
    shell:
        "pumba validate --model {input.model} --manifest {params.manifests} {params.flags} --out {output} "
        "--threads {threads} > {log} 2>&1"


rule table_ablation:
    """Table 3: every training arm and inference arm against the reference arm, read against the seeds."""
    input:
        scores="results/ablation/scores.csv",
        inference=expand("results/ablation/{arm}.csv", arm=INFERENCE_ARMS),
    output:
        csv=report(
            "results/tables/table3_ablation.csv",
            caption="../report/table3.rst",
            category="Ablations",
            labels={"table": "Table 3: ablations"},
        ),
        md="results/tables/table3_ablation.md",
        tex="results/tables/table3_ablation.tex",
    log:
        "logs/ablation/table3.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        prefix=lambda wc, output: output.csv.removesuffix(".csv"),
        named=lambda wc, input: " ".join(
            f"--named {a}={p} --group {a}=inference"
            for a, p in zip(INFERENCE_ARMS, input.inference)
        ),
        reference=ABLATION_REFERENCE,
        seed_arms=",".join(SEED_ARMS),
        against=" ".join(
            f"--against {a}={b}"
            for a, b in [
                *config["ablation"].get("against", {}).items(),
                *(
                    (a, "infer-default")
                    for a in INFERENCE_ARMS
                    if a != "infer-default"
                ),
            ]
        ),
    shell:
        "pumba tables ablation --scores {input.scores} {params.named} --reference {params.reference} "
        "--seed-arms '{params.seed_arms}' {params.against} --out {params.prefix} > {log} 2>&1"


# The spread between training seeds (`snakemake seeds --cores all`): the recipe of config["seed_spread"]
# trained once per seed, all scored on every prepared scan.
SEED_SPREAD = config.get(
    "seed_spread",
    {"recipe": "config/train/quick.yaml", "seeds": [0, 1, 2], "steps": 1000},
)


rule seed_config:
    """A training config: the seed-spread recipe with one seed."""
    input:
        repo_path(SEED_SPREAD["recipe"]),
    output:
        "results/seeds/seed-{seed}/config.yaml",
    log:
        "logs/seeds/config_{seed}.log",
    wildcard_constraints:
        seed="[0-9]+",
    conda:
        "../../envs/pumba.yaml"
    shell:
        "pumba report seed-config --base {input} --seed {wildcards.seed} --out {output} > {log} 2>&1"


use rule train as train_seed with:
    input:
        config="results/seeds/seed-{seed}/config.yaml",
        reads=[repo_path(p) for p in config_inputs(repo_path(SEED_SPREAD["recipe"]))],
    output:
        model="results/seeds/seed-{seed}/model.pt",
        log_csv="results/seeds/seed-{seed}/train_log.csv",
    log:
        "logs/seeds/train_{seed}.log",
    benchmark:
        "results/benchmarks/seeds/train_{seed}.tsv"
    wildcard_constraints:
        seed="[0-9]+",
    params:
        steps=f"--steps {SEED_SPREAD['steps']}",


rule seed_scores:
    """Every seed's model on every prepared scan."""
    input:
        models=expand("results/seeds/seed-{seed}/model.pt", seed=SEED_SPREAD["seeds"]),
        data=dataset_dirs,
    output:
        "results/seeds/scores.csv",
    log:
        "logs/seeds/scores.log",
    benchmark:
        "results/benchmarks/seeds/scores.tsv"
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


rule table_seeds:
    """The spread between seeds: each seed's mean Dice, per-dataset Dice, their sd and range."""
    input:
        "results/seeds/scores.csv",
    output:
        csv=report(
            "results/tables/seed_spread.csv",
            caption="../report/seed_spread.rst",
            category="Ablations",
            labels={"table": "seed spread"},
        ),
        md="results/tables/seed_spread.md",
        tex="results/tables/seed_spread.tex",
    log:
        "logs/seeds/table.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        prefix=lambda wc, output: output.csv.removesuffix(".csv"),
    shell:
        "pumba tables seeds --scores {input} --out {params.prefix} > {log} 2>&1"


rule seeds:
    """Target: the seed-spread table (outside the default run)."""
    input:
        "results/tables/seed_spread.csv",
