"""The one mail path: every email is composed, written to the outbox table (:func:`enqueue`), then
delivered by the delivery flow through SMTP or into the local outbox folder."""

from frontline.mail.outbox import address, compose, enqueue, enqueue_many, message_id_for

__all__ = ["address", "compose", "enqueue", "enqueue_many", "message_id_for"]
