"""Listening: what customers answer, read and acted on."""
