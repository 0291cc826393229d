"""Calibration stage: how well psi's posterior uncertainty matches the MCMC reference and the truth.

Modules: metrics (pure calibration metrics), tables (the stage's tables from arrays in memory),
inputs (reads the stage's input files), ablation (the sampler ablation: timed sampling, metrics,
recommendation), jobs (one job function per rule of workflow/rules/calibration.smk).
"""
