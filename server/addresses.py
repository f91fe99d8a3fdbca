"""Caps on what one client address holds at once: its WebSockets, and the operations open on
them. Past a cap the next one is refused, so that one address cannot take a process's memory
and event loop for itself.

Counted in each process, not in Redis as the rate limits are: what a flood takes is the
memory and the event loop of the process it is connected to, which a cap per process guards
however the load balancer spreads connections. And a rate limit's bucket refills by itself,
while a shared count of open sockets would keep counting those of a process that died.
"""

from __future__ import annotations


class PerAddress:
    """Up to `cap` held at once by each address; an address that holds none takes no memory."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._held: dict[str, int] = {}

    def take(self, address: str) -> bool:
        """One more for the address; False, taking nothing, once it holds `cap`."""
        held = self._held.get(address, 0)
        if held >= self.cap:
            return False
        self._held[address] = held + 1
        return True

    def give_back(self, address: str) -> None:
        held = self._held[address] - 1
        if held:
            self._held[address] = held
        else:
            del self._held[address]

    def held(self, address: str) -> int:
        return self._held.get(address, 0)
