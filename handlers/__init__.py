"""Intent handlers: one module per chat intent (the "intent handlers" layer, README "Layers").

They parse what was written, call the domain services (bot/services/, broadcasts/) and word the
answer; they write state and outbox rows, never commit and never call HTTP. What a handler is
handed is handlers/context.py; the chain, in order, is handlers/registry.py.
"""
