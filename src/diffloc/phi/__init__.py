"""phi: the network that maps a camera image to a super-resolved KDE, its training on phi_train
and its prediction yhat for every shard later stages use.

Modules: network (phi's architecture, loss and batched prediction); jobs (rules `train_phi`,
`infer_phi`).
"""
