"""Randomized, seeded fault harness for pgtopo (issue 11): see harness.py and README's "Chaos"."""
