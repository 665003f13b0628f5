"""Postventa's domain and worker: the shared core here, and the three loops in `sending`,
`listening` and `casework`."""
