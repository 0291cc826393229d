"""analyze: a user's TIFF movie -> localisations with per-emitter uncertainty -> exports.

Modules, one job each: card (the models' analysis card: the settings they were trained for and
the compatibility check), settings (analysis settings from a config or the card, camera values),
frames (photon conversion, whole-frame phi, psi tiles), fit (photons and background by a Poisson
fit of the PSF on the camera pixels, CRLB on the same windows), uncertainty (psi's posterior
samples on tiles -> per-localisation position spread, stitched mean/variance maps), pipeline
(one chunk of frames end to end, merging chunks), outputs (Parquet, exports, renders, written
all-or-nothing), synthetic (simulated movies with a truth table, for tests and benchmarks),
jobs (one function per rule of workflow/rules/analyze.smk) and cli (`diffloc analyze`).
"""
