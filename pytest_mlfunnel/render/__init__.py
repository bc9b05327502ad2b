"""Renderers: each reads one Report and never live state."""
