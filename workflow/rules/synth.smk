rule synth_gallery_samples:
    """Draw a few synthetic image/label pairs with the training generator, for the gallery figure."""
    output:
        directory("results/synth/gallery"),
    log:
        "logs/synth/gallery.log",
    benchmark:
        "results/benchmarks/synth/gallery.tsv"
    conda:
        "../../envs/pumba.yaml"
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        n=config["synth"]["gallery_n"],
        seed=config["seed"],
        size=config["synth"]["size"],
    shell:
        "pumba generate --n {params.n} --seed {params.seed} --size {params.size} --out {output} "
        "> {log} 2>&1"


rule synth_switch_gallery:
    """The same synthetic heads with each generator switch off and on (the switches of
    workflow/resources/switch_gallery.yaml, on the generator's default config)."""
    input:
        switches=repo_path("workflow/resources/switch_gallery.yaml"),
    output:
        report(
            "results/figures/synth/switch_gallery.png",
            caption="../report/switch_gallery.rst",
            category="Synthesis",
            labels={"figure": "generator switches"},
        ),
    log:
        "logs/synth/switch_gallery.log",
    benchmark:
        "results/benchmarks/synth/switch_gallery.tsv"
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
        "pumba figures switch-gallery --switches {input.switches} --size {params.size} "
        "--seed {params.seed} --n {params.n} --threads {threads} --out {output} > {log} 2>&1"
