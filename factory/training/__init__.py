"""Training: model-ready arrays, the training context, checkpoints, one train job,
purged CV folds and the stacking ensemble."""
