"""What the store raises: a record that is not there, a request its state forbids. Apart from the store so
its mixins (campaign_dialing, inbound_calls) raise them without importing the store back."""
from __future__ import annotations


class NotFound(LookupError):
    def __init__(self, entity: str, entity_id: str):
        super().__init__(f"{entity} {entity_id!r} not found")
        self.entity, self.entity_id = entity, entity_id


class Conflict(Exception):
    """The request is well formed but the record's state forbids it (answered as 409)."""
