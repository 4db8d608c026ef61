"""The competition's metric and the thresholds that turn probabilities into labels."""
