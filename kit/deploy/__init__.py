"""Shipping a finished ensemble to a Kaggle notebook: `kit bundle` (the offline install, the models and the blend
as one dataset) and `kit notebook` (the inference kernel). Above kit.infer and kit.kaggle."""
