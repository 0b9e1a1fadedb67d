"""Pseudo-mask refinement: PAMR, dense CRF, random walk."""
