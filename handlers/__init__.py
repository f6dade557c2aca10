"""Handlers: one module per intent.

They write state and outbox rows; they never commit and never call HTTP.
"""
