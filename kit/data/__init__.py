"""Competition files: the spec, labels and images, the resized cache, synthetic sets, folds, the loader, submissions."""
