"""Blending the members' out-of-fold predictions: gather, methods, evaluation, and what `kit blend` writes."""
