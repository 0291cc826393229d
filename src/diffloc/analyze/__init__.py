"""analyze: a user's TIFF movie -> localisations with per-emitter uncertainty -> exports.

Modules, one job each: names (file names and config sections, no heavy imports), nulls (config
values that mean none), card (the models' analysis card: the settings they were trained for and
the compatibility check), settings (analysis settings from a config or the card, camera
values), session (an analysis opened and checked before any frame is read), frames (photon
conversion, whole-frame phi, psi tiles), fit (one emitter's Poisson fit on the camera pixels,
its CRLB), crowd (neighbours and their light, frame models, residual candidates, the colour
classes neighbours are refitted in, duplicates), localise (a chunk's localisations from phi's
detections, neighbours fitted jointly, residual rounds), significance (emitter or background
fluctuation: the score and Wald tests), uncertainty (psi's posterior samples on tiles -> each
localisation's position spread, stitched mean/variance maps), recalibration (psi's position
intervals rescaled, split conformal), calibration_movie (the simulated movie the card's scales
are measured on, checkpointed in parts), pipeline (one chunk of frames end to end, merging
chunks), workers (chunks analysed by several processes at once), outputs (Parquet, exports,
renders, written all-or-nothing), synthetic (simulated movies with a truth table, for tests and
benchmarks), jobs (one function per rule of workflow/rules/analyze.smk) and cli (the `diffloc
analyze` command).
"""
