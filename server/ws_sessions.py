"""/ws and MCP sessions in the episode log, so a dropped /ws connection can be resumed.

A /ws connection is still one session, in the process that accepted it. Its
episode is logged as HTTP sessions are (reset arguments, then each action with
its reward, appended before the answer is sent), in a namespace of the store of
its own (`ws`), so /ws episodes neither count against the HTTP sessions' cap nor
collide with their ids. Episodes that MCP sessions play (`openenv/session/create`,
then tools/call) are logged the same way.

To resume after a dropped connection, a client opens a new /ws connection (to any
process or replica on the same store) and sends a reset carrying the episode id
and `resume: true`:

    {"type": "reset", "data": {"episode_id": "<id>", "resume": true}}

The connection's environment is rebuilt by replaying the log, and the answer is
the observation the episode is at (the last step's). Its steps then continue the
log. A resume of an unknown or expired id is an error message naming it.

If two connections step one episode (an old one still open after a resume), each
step lands at the end of the log, and a connection first replays the steps the
other logged since its own last, as HTTP steps do.
"""

from __future__ import annotations

import inspect
import time
import uuid
from typing import Any, ClassVar, Optional

from server.mcp_sessions import STARTED_EPISODES
from server.sessions import MAX_STEP_ATTEMPTS, action_json, parse_action
from server.stores import EpisodeLog, Record, StoreUnavailable
from support_env.access.mcp_tools import SupportToolEnvironment
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation


class EpisodeResumeError(ValueError):
    """A resume that cannot be done (unknown or expired id, or extra arguments)."""


class LoggedToolEnvironment(SupportToolEnvironment):
    """SupportToolEnvironment whose episodes are kept in `log` (set at start-up)."""

    log: ClassVar[Optional[EpisodeLog]] = None

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._logged_id: Optional[str] = None  # the episode being logged, if any
        self._generation = ""
        self._length = 0
        self._stale = False  # the log was reset elsewhere: rebuild from it before the next step

    def reset(self, *args: Any, resume: bool = False, **kwargs: Any) -> SupportObservation:
        if resume:
            return self._resume(kwargs)
        self._logged_id = None
        observation = super().reset(*args, **kwargs)
        if self.log is not None:
            arguments = {name: value for name, value in kwargs.items() if value is not None and name != "episode_id"}
            generation = uuid.uuid4().hex
            self.log.start(observation.episode_id, arguments, generation, time.time())
            self._logged_id, self._generation, self._length, self._stale = observation.episode_id, generation, 0, False
        started = STARTED_EPISODES.get()
        if started is not None:
            started.append(observation.episode_id)
        return observation

    async def reset_async(self, *args: Any, resume: bool = False, **kwargs: Any) -> SupportObservation:
        return self.reset(*args, resume=resume, **kwargs)

    def step(self, action: SupportAction, *args: Any, **kwargs: Any) -> SupportObservation:
        if self._logged_id is None or self.log is None:
            return super().step(action, *args, **kwargs)
        text = action_json(action)
        for _ in range(MAX_STEP_ATTEMPTS):
            if self._stale:
                self._rebuild()
            appended = self.log.append(self._logged_id, self._generation, self._length, text, time.time())
            if appended.status == "gone":  # idle past the TTL: the episode goes on, no longer resumable
                self._logged_id = None
                return super().step(action, *args, **kwargs)
            if appended.status == "reset":  # another connection resumed and reset it: follow the log
                self._stale = True
                continue
            for earlier in appended.before:  # steps another connection (after a resume) logged meanwhile
                SupportToolEnvironment.step(self, parse_action(earlier))
            self._length += len(appended.before)
            observation = super().step(action, *args, **kwargs)
            if appended.status == "ok":
                self._length += 1
                if observation.done:
                    try:
                        self.log.finish(self._logged_id, self._generation)
                    except StoreUnavailable:
                        pass  # logged already; a later append is a no-op after the end
            return observation
        raise RuntimeError(f"episode {self._logged_id!r} kept being reset by other connections; retry the step")

    def _resume(self, arguments: dict[str, Any]) -> SupportObservation:
        episode_id = arguments.pop("episode_id", None)
        if not episode_id or arguments:
            raise EpisodeResumeError("a resume takes the episode_id to resume and nothing else: {\"episode_id\": ..., \"resume\": true}")
        record = self.log.read(episode_id, 0, time.time(), touch=True) if self.log is not None else None
        if record is None:
            raise EpisodeResumeError(self._gone(episode_id))
        return self._replay(episode_id, record)

    def _rebuild(self) -> None:
        record = self.log.read(self._logged_id, 0, time.time(), touch=False)
        if record is None:
            episode_id, self._logged_id = self._logged_id, None
            raise EpisodeResumeError(self._gone(episode_id))
        self._replay(self._logged_id, record)

    def _replay(self, episode_id: str, record: Record) -> SupportObservation:
        observation = SupportToolEnvironment.reset(self, episode_id=episode_id, **record.reset)
        for text in record.actions:
            observation = SupportToolEnvironment.step(self, parse_action(text))
        self._logged_id, self._generation, self._length, self._stale = episode_id, record.generation, record.length, False
        return observation

    def _gone(self, episode_id: str) -> str:
        ttl = self.log.idle_ttl_s if self.log is not None else 0
        return (
            f"cannot resume episode_id {episode_id!r}: unknown or expired (a /ws episode can be resumed until it "
            f"has been idle {ttl:g} s); send a reset without resume to start a new episode"
        )


# OpenEnv passes reset/step only the keyword arguments their signatures accept (see
# mcp_tools); /ws resets go through reset_async, whose signature adds `resume`.
_RESET = inspect.signature(SupportEnvironment.reset)
LoggedToolEnvironment.reset.__signature__ = _RESET
LoggedToolEnvironment.step.__signature__ = inspect.signature(SupportEnvironment.step)
LoggedToolEnvironment.reset_async.__signature__ = _RESET.replace(
    parameters=[*_RESET.parameters.values(), inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool)]
)
