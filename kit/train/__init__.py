"""Training one fold: models, losses, the loop, checkpoints, devices and DDP, fan-out, predictions and TTA.

Nothing here is imported eagerly: `kit.train.fanout` must load torch only after choosing its GPU."""
