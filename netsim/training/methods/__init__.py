"""The training methods `netsim train` runs, one plain torch.distributed script each, named after the method
in the registry (`netsim.workloads.methods`): run them with ``netsim torchrun`` or ``torchrun`` as they are."""
