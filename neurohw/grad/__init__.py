"""Gradient estimators for stochastic spiking networks and references to audit them
(docs/gradients.md). Imports neurohw.train; train.loop imports it only to pick an estimator."""
from .estimators import ALL_ESTIMATORS, ESTIMATORS, Tape, gradient, grads_to_params, per_sample_losses
from .reference import exact_gradient, expected_loss, fd_directional, patterns

__all__ = ["ALL_ESTIMATORS", "ESTIMATORS", "Tape", "gradient", "grads_to_params", "per_sample_losses",
           "exact_gradient", "expected_loss", "fd_directional", "patterns"]
