"""Figures of the study, each drawn by a pure function from data to a matplotlib Figure.

fig1 ... fig7: `figure1` ... `figure7`, one module per figure; style: shared look, image panels
and atomic PNG + PDF saving; jobs: one job per rule of workflow/rules/figures.smk, reading the
rule's files and saving its figure.
"""
