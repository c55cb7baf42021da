"""Courier tracking."""
