"""Compiled extensions built from ``ext/*.pyx`` by ``setup.py``."""
