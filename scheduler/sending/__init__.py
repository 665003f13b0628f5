"""Sending: from a sale to the messages its customer receives, when they may."""
