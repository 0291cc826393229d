"""Figures of the study: one module per figure, each a pure function from data to a Figure."""
