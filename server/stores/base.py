"""What every episode store keeps and answers: an episode is its reset arguments
plus its actions in order (each with the reward it earned), and any process
rebuilds it by replaying them (episodes are deterministic).

A store also keeps the idle TTL and the session cap, and serialises steps:
an action is appended at the end of the log, atomically, and the append
answers with the actions before it that the writer has not seen yet (other
processes' steps). The writer replays those, then applies its own action: every
action lands once, in one order, on the state every replay will give it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Optional


class StoreUnavailable(Exception):
    """The store cannot be reached or written (503); the message says which store and why."""


class SessionCapacityReached(Exception):
    pass


@dataclass
class Record:
    """An episode as a store holds it: `actions` (as JSON) from the requested start on;
    `length` counts them all."""

    reset: dict[str, Any]
    generation: str
    length: int
    done: bool
    actions: list[str] = field(default_factory=list)


@dataclass
class Appended:
    """What an append did. `status`: "ok" (appended as action number `seq`), "done"
    (the episode is over: nothing appended), "reset" (the episode was reset since the
    writer's generation: nothing appended), "gone" (unknown or idle past the TTL).
    `before`: the actions from the writer's known length up to its own (or to the end)."""

    status: str
    seq: int = 0
    before: list[str] = field(default_factory=list)


class EpisodeLog(ABC):
    """A store of episode logs. `generation` changes with every reset of an id, so a
    process holding the episode before a reset elsewhere knows its copy is stale."""

    name: str = "store"
    shared: bool = True  # other processes may write to it (so a process's copy may be behind)

    def __init__(self, max_sessions: int, idle_ttl_s: float, evict_running: bool = False):
        self.max_sessions = max_sessions
        self.idle_ttl_s = idle_ttl_s
        # At the cap, may a running episode give up its slot (the least recently used)? Not for
        # HTTP sessions; yes for /ws episodes, whose cap is on open connections (OpenEnv's): their
        # log only makes them resumable, and an abandoned one must not hold a slot for the TTL.
        self.evict_running = evict_running

    @abstractmethod
    def start(self, episode_id: str, reset: dict[str, Any], generation: str, now: float) -> None:
        """Begin (or restart) `episode_id` with no actions. Drops idle episodes first;
        at the cap the least recently used finished episode gives up its slot (or,
        with `evict_running`, the least recently used one), and with none raises
        SessionCapacityReached."""

    @abstractmethod
    def append(self, episode_id: str, generation: str, known: int, action: str, now: float) -> Appended:
        """Append `action` at the end of `generation`'s log, unless the episode is gone,
        reset since, or done; return with it the actions from number `known` on that
        come before it."""

    @abstractmethod
    def finish(self, episode_id: str, generation: str) -> None:
        """Mark the episode done (it gives up its slot at the cap; no more appends)."""

    @abstractmethod
    def read(self, episode_id: str, start: int, now: float, touch: bool) -> Optional[Record]:
        """The episode with its actions from `start` on; None if unknown or idle past
        the TTL. `touch` counts the read as use (it renews the idle TTL)."""

    @abstractmethod
    def default_id(self) -> Optional[str]:
        """The default session (the last reset made without an id), if any."""

    @abstractmethod
    def set_default(self, episode_id: str) -> None: ...

    def close(self) -> None:
        pass

    def capacity_message(self) -> str:
        return (
            f"session capacity reached ({self.max_sessions} running episodes); finish or abandon "
            f"episodes (idle ones expire after {self.idle_ttl_s:g} s) and retry"
        )
