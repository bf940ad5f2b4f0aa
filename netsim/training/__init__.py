"""Real PyTorch training on the simulated network: the torch.distributed backend that records a running
program, the launcher of local ranks, the model, the exchanged-value formats, the outer-optimiser maths,
each training method as a plain script (`methods/`) and the driver that runs one on the simulated clock."""
