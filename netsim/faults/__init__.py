"""C4D-style fault studies: a long training job on a simulated fabric, faults injected at run time,
telemetry as a collective library exposes it, a detector that classifies and localises, recovery."""
