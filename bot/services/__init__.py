"""Domain services: the business rules every surface (chat, console, API, CLI) calls.

They take an open session and their dependencies as arguments, write rows and outbox messages,
and never commit; they import only foundation modules, the outbox and models.
"""
