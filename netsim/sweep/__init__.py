"""`netsim sweep`: many scenarios from one spec, on a local process pool or a Dask cluster, resumable."""
