"""Numbered service cards, returns and exchanges."""
