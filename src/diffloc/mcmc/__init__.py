"""MCMC stage: reference posteriors of isolated emitters by random-walk Metropolis-Hastings.

- sampler: the vectorised sampler, its diagnostics and the push-forward to KDE maps
- plan: splits, chunks and each chunk's config slice, from the config alone
- chunks: one chunk's chains, maps and diagnostics, and the per-(setting, split) summary
- jobs: one job function per rule of workflow/rules/mcmc.smk
"""
