"""OpenEnv RFC 008's semantic level (level 3), as this project's own tests.

`openenv validate` 0.10 reserves the semantic check ids in its severity policy
but implements none of them (they SKIP: "grader not implemented in this
build"). Each test here is named after one check id (`semantic.oracle_max` ->
`test_semantic_oracle_max`), so they map one-to-one when the validator gains
them; `test_every_semantic_check_id_of_the_policy_has_its_test` keeps the list
complete.

What is measured, following the RFC:

- The verifier is the reward channel (`capabilities.verifier.kind`), and what it
  delivers for an episode is its grade, in [0, 1]: the last step's reward carries
  it (`reward_detail.components["episode_grade"]`) and `observation.grade.score`
  states it. The maximum is 1.
- The oracle is the scripted reference policy (support_env/agents/reference.py),
  which reads only what any agent sees. The floor is measured: the grade of an
  empty trajectory (no ticket touched). Canaries are the exploit zoo
  (support_env/agents/zoo.py), each played on the tasks it targets.
- Tolerance and margin are the manifest's (`reward.oracle_tolerance`, default 0,
  and `reward.floor_margin`).
- The tasks are the Task API's: every canonical task, and the first tasks of the
  generated `train` and `eval` splits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

import support_env.environment as environment_module
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import Rollout, play
from support_env.agents.zoo import EXPLOITS, CloseImmediately, DoNothing, make
from support_env.environment import SupportEnvironment
from support_env.episodes.catalogue import build_episode
from support_env.models import SupportAction

from .conftest import ROOT, HttpEpisode
from .test_exploits import flipped, visible

VALIDATION = yaml.safe_load((ROOT / "openenv.yaml").read_text())["validation"]
ORACLE_TOLERANCE = VALIDATION["reward"].get("oracle_tolerance", 0.0)
FLOOR_MARGIN = VALIDATION["reward"]["floor_margin"]
RESOURCES = VALIDATION["resources"]
MAX_GRADE = 1.0

# (split, index) of the Task API: all canonical tasks, and seeds 0-1 of each queue task in train and eval.
TASKS = [("canonical", i) for i in range(6)] + [(split, i) for split in ("train", "eval") for i in range(6)]
TASK_IDS = [f"{split}-{index}" for split, index in TASKS]


def played(policy, split: str, index: int) -> Rollout:
    env = SupportEnvironment()
    return play(policy, lambda: env.reset(split=split, index=index, episode_id="rfc008"), env.step)


def task_id_of(split: str, index: int) -> str:
    return SupportEnvironment().get_task(split, index)["task_id"]


def test_every_semantic_check_id_of_the_policy_has_its_test():
    """The local-lane semantic checks of OpenEnv's severity policy, one test each."""
    from openenv.validation.policy import load_policy
    from openenv.validation.types import Lane

    semantic = sorted(check for check in load_policy("v2").entries_for_lane(Lane.LOCAL) if check.startswith("semantic."))
    tests = sorted("semantic." + name[len("test_semantic_"):] for name in globals() if name.startswith("test_semantic_"))
    assert semantic == tests


@pytest.mark.parametrize("split, index", TASKS, ids=TASK_IDS)
def test_semantic_oracle_max(split, index):
    """The reference solution reaches the maximum grade, delivered on the last step."""
    rollout = played(ReferencePolicy(), split, index)
    final = rollout.final
    assert final.done and final.grade.score >= MAX_GRADE - ORACLE_TOLERANCE and final.grade.success
    assert final.reward_detail.components["episode_grade"] == final.grade.score
    assert final.last_action_error is None and final.invalid_actions == 0


@pytest.mark.parametrize("split, index", TASKS, ids=TASK_IDS)
def test_semantic_floor_gap(split, index):
    """Empty trajectories measure the floor: the same grade whichever empty trajectory
    (never touching a ticket, or closing each unhandled), and at least the declared
    margin below the maximum."""
    floors = {cls.name: played(cls(), split, index).grade.score for cls in (DoNothing, CloseImmediately)}
    floor = floors["do-nothing"]
    assert set(floors.values()) == {floor} == {0.0}, floors
    assert MAX_GRADE - floor >= FLOOR_MARGIN


@pytest.mark.parametrize("split, index", TASKS, ids=TASK_IDS)
def test_semantic_canary_floor(split, index):
    """Canaries (every exploit of the zoo aimed at this task) stay in the floor band: at
    least the declared margin below the maximum, below the reference in grade and in
    return. An exploit that does part of the job (classify-only classifies correctly)
    earns that part; "at the floor" is read against the margin the manifest declares."""
    task_id = task_id_of(split, index)
    reference = played(ReferencePolicy(), split, index)
    canaries = [cls for cls in EXPLOITS if task_id in cls.targets]
    assert len(canaries) >= 4  # on easy_classify classifying is the job, so the classify-based ones are not exploits
    for cls in canaries:
        rollout = played(make(cls.name, seed=index), split, index)
        grade = rollout.grade.score if rollout.grade else 0.0
        assert grade <= MAX_GRADE - FLOOR_MARGIN, (cls.name, grade)
        assert grade < reference.grade.score and rollout.total_reward < reference.total_reward, cls.name


@pytest.mark.parametrize("split, index", [t for t in TASKS if t[0] != "canonical"], ids=[i for i in TASK_IDS if not i.startswith("canonical")])
def test_semantic_no_solution_leakage(monkeypatch, split, index):
    """Nothing an agent sees before the end depends on the hidden truth: with every
    ticket's truth changed, the same actions give the same observations and state,
    except rewards and the grade (tests/test_exploits.py does this for the canonical
    tasks; here the generated ones)."""
    original = played(ReferencePolicy(), split, index)

    def replay(env: SupportEnvironment) -> list[str]:
        seen = [visible(env.reset(split=split, index=index, episode_id="same"), env.state)]
        return seen + [visible(env.step(action), env.state) for action in original.actions]

    monkeypatch.setattr(environment_module, "build_episode", lambda *args: flipped(build_episode(*args)))
    twin = SupportEnvironment()
    seen = replay(twin)
    monkeypatch.undo()
    truth = SupportEnvironment()
    assert seen == replay(truth)
    assert twin.state.grade != truth.state.grade


@pytest.mark.parametrize("split, index", TASKS, ids=TASK_IDS)
def test_semantic_verifier_determinism(split, index):
    """The same trajectory gets the same step rewards, components and grade every time."""
    first = played(ReferencePolicy(), split, index)
    env = SupportEnvironment()
    again = [env.reset(split=split, index=index, episode_id="rfc008")] + [env.step(a) for a in first.actions]
    assert [o.reward_detail for o in again[1:]] == [o.reward_detail for o in first.observations[1:]]
    assert again[-1].grade == first.grade and again == first.observations


PORTABLE_REPLAY = """
import json, sys
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction
tasks = json.loads(sys.stdin.read())
out = []
for task in tasks:
    env = SupportEnvironment()
    observations = [env.reset(split=task["split"], index=task["index"], episode_id="rfc008")]
    observations += [env.step(SupportAction.model_validate(a)) for a in task["actions"]]
    out.append([o.reward_detail.model_dump() for o in observations[1:]] + [observations[-1].grade.model_dump()])
print(json.dumps(out))
"""


def test_semantic_verifier_portability(tmp_path):
    """The verdict does not depend on the host: replayed in another process, from another
    directory, with another hash seed, time zone and locale, and without any network
    (its own network namespace, where this machine allows one), every reward and grade
    is the same."""
    tasks, expected = [], []
    for split, index in TASKS:
        rollout = played(ReferencePolicy(), split, index)
        actions = [a.model_dump(exclude_none=True, exclude={"metadata"}) for a in rollout.actions]
        tasks.append({"split": split, "index": index, "actions": actions})
        expected.append([o.reward_detail.model_dump() for o in rollout.observations[1:]] + [rollout.grade.model_dump()])
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345",
           "TZ": "Pacific/Kiritimati", "LANG": "C", "LC_ALL": "C"}
    argv = [sys.executable, "-c", PORTABLE_REPLAY]
    if os.geteuid() == 0 and shutil.which("unshare"):
        argv = ["unshare", "--net", "--", *argv]
    result = subprocess.run(argv, input=json.dumps(tasks), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == json.loads(json.dumps(expected))


def test_semantic_resource_envelope(start_server, tmp_path):
    """The server, configured as the image runs it (playground on), stays within the
    declared resources while the reference policy plays every task to the end: peak
    memory under `memory_mb`, at most `cpu` cores, each episode well within
    `episode_timeout_s`, and what it writes (its Gradio temp directory) under `disk_mb`."""
    gradio_tmp = tmp_path / "gradio"
    live = start_server(ENABLE_WEB_INTERFACE="true", GRADIO_TEMP_DIR=str(gradio_tmp))
    proc = Path(f"/proc/{live.process.pid}")
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_s() -> float:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    with httpx.Client(base_url=live.url, timeout=30) as http:
        assert http.get("/web/").status_code == 200  # the playground is on, Gradio loaded
        cpu_before, wall_before = cpu_s(), time.monotonic()
        for split, index in TASKS:
            started = time.monotonic()
            episode = HttpEpisode(http)
            rollout = play(ReferencePolicy(), lambda: episode.reset(split=split, index=index), episode.step)
            assert rollout.final.done and time.monotonic() - started < RESOURCES["episode_timeout_s"] / 10
        cores = (cpu_s() - cpu_before) / (time.monotonic() - wall_before)
    peak_mb = next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines() if line.startswith("VmHWM:")) / 1024
    written_mb = sum(f.stat().st_size for f in gradio_tmp.rglob("*") if f.is_file()) / 2**20 if gradio_tmp.exists() else 0.0
    print(f"resource envelope: peak {peak_mb:.0f} MB, {cores:.2f} cores, wrote {written_mb:.1f} MB")
    assert peak_mb < RESOURCES["memory_mb"], peak_mb
    assert cores <= RESOURCES["cpu"] + 0.05, cores
    assert written_mb < RESOURCES["disk_mb"], written_mb


def test_semantic_replayability(server):
    """An episode recorded over one transport (its reset arguments and actions) replays
    in process to the same observations, rewards and grade."""
    from support_env.client import SupportEnv

    with SupportEnv(base_url=server.url).sync() as remote:
        policy = ReferencePolicy()
        result = remote.reset(split="eval", index=2, episode_id="replay")
        recorded, actions = [result.observation], []
        while not result.done:
            actions.append(policy.act(result.observation))
            result = remote.step(actions[-1])
            recorded.append(result.observation)
    env = SupportEnvironment()
    replayed = [env.reset(split="eval", index=2, episode_id="replay")]
    replayed += [env.step(SupportAction.model_validate(a.model_dump())) for a in actions]
    assert replayed == recorded and replayed[-1].grade.score == MAX_GRADE
