"""Architectures of the zoo."""
