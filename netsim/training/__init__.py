"""Real PyTorch training coupled to the simulated network: the model, the
exchanged-value formats and the outer-optimiser maths of each low-communication method."""
