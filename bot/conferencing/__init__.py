"""Conferences: the summary model and the backends that hold them."""
