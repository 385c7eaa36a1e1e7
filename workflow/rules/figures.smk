rule figure_metric:
    """Dice or HD95 by dataset and method."""
    input:
        "results/tables/per_subject.csv",
    output:
        report(
            "results/figures/{metric}.png",
            caption="../report/metric.rst",
            category="Accuracy",
            labels={"figure": "{metric}"},
        ),
    log:
        "logs/figures/{metric}.log",
    wildcard_constraints:
        metric="dice|hd95",
    conda:
        "../../envs/pumba.yaml"
    params:
        column=lambda wc: {"dice": "dice", "hd95": "hd95_mm"}[wc.metric],
    shell:
        "pumba figures metrics --table {input} --metric {params.column} --out {output} > {log} 2>&1"


rule figure_cost:
    """Accuracy against cost: mean Dice against seconds per scan, marker area the peak memory."""
    input:
        "results/tables/methods.csv",
    output:
        report(
            "results/figures/cost.png",
            caption="../report/cost.rst",
            category="Cost",
            labels={"figure": "cost"},
        ),
    log:
        "logs/figures/cost.log",
    conda:
        "../../envs/pumba.yaml"
    shell:
        "pumba figures cost --table {input} --out {output} > {log} 2>&1"


rule figure_training:
    """Training curves of the first model this workflow trains (config['methods'] order)."""
    input:
        f"results/model/{TRAINED[0] if TRAINED else 'none'}/train_log.csv",
    output:
        report(
            "results/figures/training.png",
            caption="../report/training.rst",
            category="Training",
            labels={"figure": "training curves"},
        ),
    log:
        "logs/figures/training.log",
    conda:
        "../../envs/pumba.yaml"
    shell:
        "pumba figures training --log {input} --out {output} > {log} 2>&1"


rule figure_gallery:
    """Synthetic training samples with their labels."""
    input:
        "results/synth/gallery",
    output:
        report(
            "results/figures/synth_gallery.png",
            caption="../report/synth_gallery.rst",
            category="Training",
            labels={"figure": "synthetic samples"},
        ),
    log:
        "logs/figures/synth_gallery.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        n=config["synth"]["gallery_n"],
    shell:
        "pumba figures gallery --dir {input} --n {params.n} --out {output} > {log} 2>&1"


rule figure_montage:
    """Every method's mask contour over three orthogonal slices of one subject."""
    input:
        data="results/data/{dataset}",
        records=expand(
            "results/predictions/{method}/{{dataset}}/{{subject}}.json", method=METHODS
        ),
    output:
        report(
            "results/figures/montage/{dataset}/{subject}.png",
            caption="../report/montage.rst",
            category="Overlays",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "subject": "{subject}"},
        ),
    log:
        "logs/figures/montage/{dataset}/{subject}.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        masks=lambda wc, input: " ".join(
            f"--mask {m}={r.replace('.json', '.nii.gz')}"
            for m, r in zip(METHODS, input.records)
        ),
    shell:
        "pumba figures montage --image {input.data}/{wildcards.subject}/image.nii.gz "
        "--reference {input.data}/{wildcards.subject}/mask.nii.gz {params.masks} "
        "--missing-as-failed --title '{wildcards.dataset} / {wildcards.subject}' --out {output} "
        "> {log} 2>&1"
