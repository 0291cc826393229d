"""Every file format of a run, in one place: write (atomically, byte-reproducibly), validate, read.

Modules: files (generic NPZ / CSV / Parquet I/O and the error types: `DataError` and one
subclass per format family); shards (in-memory scenes and shards, shard and yhat files);
models (network files); condition (psi's condition arrays from yhat and shard files); posterior (psi's posterior summaries); mcmc (MCMC chains, maps and
diagnostics); movies (a user's TIFF / OME-TIFF movie and camera maps); exports (localisations
to ThunderSTORM CSV and Picasso HDF5). A reader error names the file and, where a rebuild fixes
it, says so.
"""
