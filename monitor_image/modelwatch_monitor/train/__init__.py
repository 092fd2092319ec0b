"""Training: FLAML AutoML behind a thin adapter and the champion/challenger comparison."""
