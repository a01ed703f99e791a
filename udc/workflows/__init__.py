"""What the binaries chain, driven by a config: train and export, search and export, the Pareto
benchmark with its tfmot baselines and controls."""
