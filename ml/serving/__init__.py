"""Serving: the model registry, the training job that saves through it, scoring and what-if."""
