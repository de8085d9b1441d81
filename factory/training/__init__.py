"""Training: model-ready arrays, the training context, checkpoints, one train job,
CV splits (purged k-fold, walk-forward, combinatorial purged CV) and the stacking ensemble."""
