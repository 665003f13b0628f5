"""Postventa's domain and worker: models, planning, dispatch, transports, replies, cases."""
