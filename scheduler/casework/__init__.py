"""Casework: a person takes a customer's objection to its end, in time."""
