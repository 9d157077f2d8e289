"""SUPPORT_ENV_STORE=memory: episode logs in this process's memory (a restart
forgets them; one process only)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

from server.stores.base import Appended, EpisodeLog, Record, SessionCapacityReached


@dataclass
class _Episode:
    reset: dict[str, Any]
    generation: str
    last_used: float
    done: bool = False
    actions: list[str] = field(default_factory=list)


class MemoryLog(EpisodeLog):
    name = "memory"
    shared = False

    def __init__(self, max_sessions: int, idle_ttl_s: float, evict_running: bool = False):
        super().__init__(max_sessions, idle_ttl_s, evict_running)
        self._episodes: OrderedDict[str, _Episode] = OrderedDict()  # least recently used first
        self._default: Optional[str] = None

    def __len__(self) -> int:
        return len(self._episodes)

    def start(self, episode_id: str, reset: dict[str, Any], generation: str, now: float) -> None:
        self._expire(now)
        if episode_id not in self._episodes and len(self._episodes) >= self.max_sessions:
            victim = next((key for key, episode in self._episodes.items() if episode.done or self.evict_running), None)
            if victim is None:
                raise SessionCapacityReached(self.capacity_message())
            self._drop(victim)
        self._episodes[episode_id] = _Episode(dict(reset), generation, now)
        self._episodes.move_to_end(episode_id)

    def append(self, episode_id: str, generation: str, known: int, action: str, now: float) -> Appended:
        episode = self._live(episode_id, now)
        if episode is None:
            return Appended("gone")
        if episode.generation != generation or known > len(episode.actions):
            return Appended("reset")
        before = episode.actions[known:]
        if episode.done:
            return Appended("done", len(episode.actions), before)
        episode.actions.append(action)
        self._use(episode_id, episode, now)
        return Appended("ok", len(episode.actions) - 1, before)

    def finish(self, episode_id: str, generation: str) -> None:
        episode = self._episodes.get(episode_id)
        if episode is not None and episode.generation == generation:
            episode.done = True

    def read(self, episode_id: str, start: int, now: float, touch: bool) -> Optional[Record]:
        episode = self._live(episode_id, now)
        if episode is None:
            return None
        if touch:
            self._use(episode_id, episode, now)
        return Record(episode.reset, episode.generation, len(episode.actions), episode.done, episode.actions[start:])

    def default_id(self) -> Optional[str]:
        return self._default

    def set_default(self, episode_id: str) -> None:
        self._default = episode_id

    def _live(self, episode_id: str, now: float) -> Optional[_Episode]:
        episode = self._episodes.get(episode_id)
        if episode is not None and episode.last_used <= now - self.idle_ttl_s:
            self._drop(episode_id)
            return None
        return episode

    def _use(self, episode_id: str, episode: _Episode, now: float) -> None:
        episode.last_used = now
        self._episodes.move_to_end(episode_id)

    def _expire(self, now: float) -> None:
        cutoff = now - self.idle_ttl_s
        while self._episodes:
            key, oldest = next(iter(self._episodes.items()))
            if oldest.last_used > cutoff:
                break
            self._drop(key)

    def _drop(self, episode_id: str) -> None:
        del self._episodes[episode_id]
        if self._default == episode_id:
            self._default = None
