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
