"""One training loop for both networks (phi and psi).

Modules: loop (Adam with warm-up and cosine decay, validation, CSV log, progress bar, EMA,
checkpoints with exact resume, pinned CPU threads); batches (seeded batches streamed from
shards, a pure function of the step); augment (the symmetries of the square per image,
`train.augment`); pairs (each network's training pairs as shard sources).
"""
