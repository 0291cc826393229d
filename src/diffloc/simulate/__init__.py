"""Simulation: seeded scenes of emitters rendered into camera images and their KDEs, one shard
at a time, each shard a pure function of its slice of the config.

Modules: scenes (scene sampling, rendering, shard generation); jobs (the rule `simulate`).
"""
