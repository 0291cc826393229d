"""diffloc: uncertainty-aware single-molecule localisation microscopy by conditional diffusion.

The package mirrors the workflow (workflow/rules/<stage>.smk): a ground floor, then one
subpackage per stage, each with a `jobs` module holding one keyword-only function per rule
(the rule scripts in workflow/scripts/ only call it). Imports point down this list only:

  ground floor  config (checks, splits, hashes), seeding (keyed random streams), runtime
                (devices, threads, job logs), provenance (versions, source fingerprint,
                machine)
  physics       PSF, camera, KDE, Cramer-Rao bound
  data          every file format: shards, yhat, models, posterior summaries, MCMC files
  simulate      scenes -> camera images and true KDEs, one shard per job
  training      the one training loop (both networks), batches, training pairs
  phi           camera image -> KDE estimate yhat (train, infer)
  localize      detection, matching, metrics, photon sweep vs CRLB, phi's targets
  psi           conditional diffusion on yhat: U-Net, schedules, samplers, posterior summaries
  mcmc          exact reference posterior of isolated emitters, push-forward to KDE variance
  calibration   psi's uncertainty against MCMC and the truth, sampler ablation, targets
  analyze       a user's TIFF movie -> localisations with uncertainty, exports, renders, CLI
  figures       one pure function per figure (figure1 ... figure7) and their jobs
  report        dataset summary, run info and the HTML report
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diffloc")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
