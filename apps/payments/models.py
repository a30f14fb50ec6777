from shop.events.models import DeadLetterBase, InboxMessageBase, OutboxMessageBase


class OutboxMessage(OutboxMessageBase):
    pass


class InboxMessage(InboxMessageBase):
    pass


class DeadLetter(DeadLetterBase):
    pass
