"""Everything that goes out: the outbox and its worker, bulletins, urgent notices."""
