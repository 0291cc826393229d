"""Localisation on KDEs (phi's yhat or the true y0): detection, matching to the true emitters,
the photon sweep against the Cramer-Rao bound and phi's target checks.

Modules: detection (LoG detector, sub-pixel refinement); matching (matching conventions,
localisation metrics); photon_sweep (RMSE beside sqrt(CRLB)); targets (phi's target checks);
jobs (rules `localize`, `photon_sweep`, `phi_targets`).
"""
