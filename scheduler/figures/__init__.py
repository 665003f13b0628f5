"""What the follow-ups achieve, in figures: for the owner's dashboard and `GET /api/stats`."""
