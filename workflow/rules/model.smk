rule train:
    """Train one of our models (or the release candidate) on synthetic heads generated on the fly (GPU when
    configured); a re-run resumes from the checkpoint."""
    input:
        config=lambda wc: repo_path(TRAIN_CONFIGS[wc.model]),
        reads=train_inputs,
    output:
        model="results/model/{model}/model.pt",
        log_csv="results/model/{model}/train_log.csv",
    log:
        "logs/model/train_{model}.log",
    benchmark:
        "results/benchmarks/model/train_{model}.tsv"
    wildcard_constraints:
        model="|".join(TRAIN_CONFIGS),
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
        # the config's own number of steps; the ablation and seed runs set theirs (workflow/rules/ablation.smk)
        steps="",
    shell:
        "pumba train --config {input.config} --out {params.out} --resume {params.steps} "
        "--device {params.device} --threads {threads} --no-progress > {log} 2>&1"


rule export_release:
    """The release weights: the two stages in one model file, float16 (half the size, same masks)."""
    input:
        coarse="results/model/release/model.pt",
        fine="results/model/release-fine/model.pt",
    output:
        f"results/release/{config['release']['name']}.pt",
    log:
        "logs/model/export_release.log",
    conda:
        "../../envs/pumba.yaml"
    shell:
        "pumba cascade --coarse {input.coarse} --fine {input.fine} --out {output} > {log} 2>&1"


rule release_scores:
    """The release model and its snapshots scored on every prepared scan: the evaluation table and the
    learning curve of the model card."""
    input:
        model=rules.export_release.output,
        run="results/model/release/model.pt",
        fine="results/model/release-fine/model.pt",
        data=dataset_dirs,
    output:
        scores=report(
            "results/release/scores.csv",
            caption="../report/release_scores.rst",
            category="Release",
        ),
        curve=report(
            "results/release/learning_curve.csv",
            caption="../report/learning_curve.rst",
            category="Release",
        ),
        fine_curve=report(
            "results/release/learning_curve_fine.csv",
            caption="../report/learning_curve.rst",
            category="Release",
        ),
    log:
        "logs/model/release_scores.log",
    benchmark:
        "results/benchmarks/model/release_scores.tsv"
    conda:
        "../../envs/pumba.yaml"
    threads: 2
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
        snapshots=lambda wc, input: os.path.join(
            os.path.dirname(input.run), "snapshots"
        ),
        fine_snapshots=lambda wc, input: os.path.join(
            os.path.dirname(input.fine), "snapshots"
        ),
    shell:
        "(pumba validate --model {input.model} --manifest {params.manifests} --out {output.scores} "
        "--threads {threads} && "
        "pumba validate --model {params.snapshots}/*.pt --manifest {params.manifests} "
        "--out {output.curve} --threads {threads} && "
        "pumba validate --model {input.run} --fine {params.fine_snapshots}/*.pt "
        "--manifest {params.manifests} --out {output.fine_curve} --threads {threads}) > {log} 2>&1"


rule release:
    """Target: train, export and score the release model (config['release'])."""
    input:
        rules.release_scores.output,
