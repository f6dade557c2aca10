"""Everything that goes out to many: bulletins and urgent notices (domain services), and the
outbox with its delivery worker (``outbox.py``, the layer below the services)."""
