"""psi: a conditional diffusion model that samples super-resolved KDEs given phi's estimate.

unet: the conditional U-Net (its input besides y_t, yhat or yhat and the camera image in
photons, is built in one place: diffloc.data.condition); diffusion: noise schedules, training loss, samplers,
load_psi; posterior: per-image summaries (mean, std, quantiles) of sampled posteriors; quality:
how well the posterior mean and std maps do against the truth; crops: random square crops of
the training pairs (`diffusion.train_crop`); jobs: one job function per psi rule.
"""
