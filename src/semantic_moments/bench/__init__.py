"""Benchmarks: synthetic SimMotion-style triplets, real triplet manifests, metrics, baselines."""
