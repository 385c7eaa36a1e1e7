# Figures of the paper: Figure 1 (synthesis step by step, and the release recipe's switches), Figure 2
# (qualitative), Figure 3 (Dice/HD95 per dataset and method, per-stratum summary), overlay montages, the
# NiiVue viewer. Every method keeps its config order and colour (--methods).

# The NiiVue bundle scripts/setup.sh fetches (pinned, checked); without it the viewer is left out, with a warning.
NIIVUE_BUNDLE = repo_path(".cache/niivue/niivue.umd.js")
VIEWERS = ["results/report/viewer.html"] if os.path.isfile(NIIVUE_BUNDLE) else []
if not VIEWERS:
    logger.warning(
        f"viewer left out: no NiiVue bundle at {NIIVUE_BUNDLE} (bash scripts/setup.sh fetches it)"
    )


rule figure_metric:
    """Dice or HD95 by dataset and method."""
    input:
        "results/tables/per_subject.csv",
    output:
        report(
            "results/figures/{metric}.png",
            caption="../report/metric.rst",
            category="Accuracy",
            subcategory="Figure 3",
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
        methods=METHOD_LIST,
    shell:
        "pumba figures metrics --table {input} --metric {params.column} --methods {params.methods} "
        "--out {output} > {log} 2>&1"


rule figure_cost:
    """Accuracy against cost: mean Dice against seconds per scan, marker area the peak memory."""
    input:
        "results/tables/methods.csv",
    output:
        report(
            "results/figures/cost.png",
            caption="../report/cost.rst",
            category="Runtime",
            labels={"figure": "cost"},
        ),
    log:
        "logs/figures/cost.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        methods=METHOD_LIST,
    shell:
        "pumba figures cost --table {input} --methods {params.methods} --out {output} > {log} 2>&1"


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
            category="Synthesis",
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
    """Three orthogonal slices of one subject: the reference's outline, then one row per method."""
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
        methods=METHOD_LIST,
    shell:
        "pumba figures montage --image {input.data}/{wildcards.subject}/image.nii.gz "
        "--reference {input.data}/{wildcards.subject}/mask.nii.gz {params.masks} "
        "--missing-as-failed --title '{wildcards.dataset} / {wildcards.subject}' "
        "--methods {params.methods} --out {output} > {log} 2>&1"


rule figure_synth_steps:
    """Figure 1: the synthesis of two heads of the release recipe step by step, from the generator's stages."""
    input:
        config=repo_path(config["release"]["coarse"]),
    output:
        report(
            "results/figures/synth_steps.png",
            caption="../report/synth_steps.rst",
            category="Synthesis",
            subcategory="Figure 1",
            labels={"figure": "synthesis step by step"},
        ),
    log:
        "logs/figures/synth_steps.log",
    benchmark:
        "results/benchmarks/figures/synth_steps.tsv"
    conda:
        "../../envs/pumba.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        seed=config["seed"],
        size=config["synth"]["size"],
    shell:
        "pumba figures synth-steps --base-config {input.config} --size {params.size} --seed {params.seed} "
        "--n 2 --threads {threads} --out {output} > {log} 2>&1"


rule figure_release_switches:
    """Figure 1b: each generator switch off and on, on the release recipe's generator config."""
    input:
        switches=repo_path("workflow/resources/switch_gallery.yaml"),
        config=repo_path(config["release"]["coarse"]),
    output:
        report(
            "results/figures/release_switches.png",
            caption="../report/release_switches.rst",
            category="Synthesis",
            subcategory="Figure 1",
            labels={"figure": "release recipe's switches"},
        ),
    log:
        "logs/figures/release_switches.log",
    benchmark:
        "results/benchmarks/figures/release_switches.tsv"
    conda:
        "../../envs/pumba.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        n=config["synth"]["switch_gallery_n"],
        seed=config["seed"],
        size=config["synth"]["size"],
    shell:
        "pumba figures switch-gallery --switches {input.switches} --base-config {input.config} "
        "--size {params.size} --seed {params.seed} --n {params.n} --threads {threads} --out {output} "
        "> {log} 2>&1"


rule figure_qualitative:
    """Figure 2: one row per dataset, one column per method, at the brain and where the masks differ most."""
    input:
        data=[f"results/data/{d}" for d in AVAILABLE],
        records=[r for m in METHODS for r in records(m)],
    output:
        report(
            "results/figures/qualitative.png",
            caption="../report/qualitative.rst",
            category="Accuracy",
            subcategory="Figure 2",
            labels={"figure": "qualitative"},
        ),
    log:
        "logs/figures/qualitative.log",
    benchmark:
        "results/benchmarks/figures/qualitative.tsv"
    conda:
        "../../envs/pumba.yaml"
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
        methods=",".join(METHODS),
    shell:
        "pumba figures qualitative --manifest {params.manifests} --predictions results/predictions "
        "--methods {params.methods} --out {output} > {log} 2>&1"


rule figure_strata:
    """Figure 3b: every method against ours per species, contrast and pathology."""
    input:
        table="results/tables/per_subject.csv",
        data=[f"results/data/{d}" for d in AVAILABLE],
    output:
        figure=report(
            "results/figures/strata.png",
            caption="../report/strata.rst",
            category="Accuracy",
            subcategory="Figure 3",
            labels={"figure": "strata"},
        ),
        csv="results/tables/strata.csv",
    log:
        "logs/figures/strata.log",
    conda:
        "../../envs/pumba.yaml"
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
        methods=METHOD_LIST,
        ours=OURS,
    shell:
        "pumba figures strata --table {input.table} --manifest {params.manifests} --ours {params.ours} "
        "--methods {params.methods} --out {output.figure} --csv {output.csv} > {log} 2>&1"


rule viewer:
    """The interactive viewer: every scan with the reference and every method's mask in NiiVue (offline)."""
    input:
        bundle=NIIVUE_BUNDLE,
        data=[f"results/data/{d}" for d in AVAILABLE],
        records=[r for m in METHODS for r in records(m)],
    output:
        report(
            "results/report/viewer.html",
            caption="../report/viewer.rst",
            category="Accuracy",
            subcategory="Viewer",
            labels={"figure": "NiiVue viewer"},
        ),
    log:
        "logs/figures/viewer.log",
    benchmark:
        "results/benchmarks/figures/viewer.tsv"
    conda:
        "../../envs/pumba.yaml"
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        manifests=lambda wc, input: [f"{d}/manifest.tsv" for d in input.data],
        methods=",".join(METHODS),
        ours=OURS,
    shell:
        "pumba report viewer --manifest {params.manifests} --predictions results/predictions "
        "--methods {params.methods} --ours {params.ours} --bundle {input.bundle} --out {output} "
        "> {log} 2>&1"
