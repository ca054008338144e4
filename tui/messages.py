"""Messages the screens share."""

from __future__ import annotations

from textual.message import Message


class WorkProgress(Message):
    """(done, total) of a worker's job. Subclass it per screen (the handler's name comes
    from the subclass); a newer one replaces one of its kind still in the queue."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done, self.total = done, total

    def can_replace(self, message: Message) -> bool:
        return type(message) is type(self)
