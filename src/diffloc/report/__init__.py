"""The run's report: its configuration, software versions and datasets, and the self-contained
HTML report of every registered figure and table.

Modules: datasets (per-split dataset summary); jobs (rules `run_info`, `report`).
"""
