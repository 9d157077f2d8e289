"""`python -m support_env.export`: episodes as SFT chat transcripts, one JSON line each.

    python -m support_env.export --policy reference --split train --seeds 0-999 --out sft.jsonl
    python -m support_env.export --tasks hard_mixed_queue,duplicate_charge_refund --seeds 0-99 --out hard.jsonl

Each record holds the episode's `messages` (system, user, assistant turns with
`tool_calls`, `role: tool` results), the `tools` (the TRL adapter's tools as JSON
schemas), and its task_id, seed, split, queue_length, grade and reward. The logic lives in
support_env/agents/transcripts.py. The eval split is held out: only `--split
eval` exports it.
"""

from __future__ import annotations

import argparse
import sys

from .agents.transcripts import write_transcripts
from .agents.zoo import ZOO
from .episodes.catalogue import QUEUE_TASKS, TASK_IDS


def parse_seeds(text: str) -> list[int]:
    """'0-999', '3' or '0,5,9-11' -> the seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"seeds look like 0-999, 7 or 0,5,9-11; got {text!r}") from None
        if first < 0 or last < first:
            raise argparse.ArgumentTypeError(f"a seed range runs from a non-negative seed upwards; got {part!r}")
        seeds += range(first, last + 1)
    return seeds


def parse_tasks(text: str) -> list[str]:
    tasks = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASK_IDS]
    if unknown or not tasks:
        raise argparse.ArgumentTypeError(f"unknown task(s) {', '.join(unknown) or '(none)'}; known: {', '.join(TASK_IDS)}")
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support_env.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="reference", choices=[p.name for p in ZOO], help="who plays (default: reference)")
    parser.add_argument("--split", default="train", choices=("train", "eval"), help="template split (default train; eval is held out and exported only when named)")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-99"), help="seeds, e.g. 0-999 or 0,5,9-11 (default 0-99)")
    parser.add_argument("--tasks", type=parse_tasks, default=list(QUEUE_TASKS), help="comma-separated task ids (default: the queue tasks); a case task is its one episode")
    parser.add_argument("--queue-length", type=int, default=None, help="tickets per queue (1-10; default: the task's), a curriculum knob")
    parser.add_argument("--out", required=True, help="the JSONL file to write ('-' for stdout)")
    args = parser.parse_args(argv)

    allow_eval = args.split == "eval"
    if allow_eval:
        print("exporting the eval split, which is held out for measuring trained policies", file=sys.stderr)
    if args.out == "-":
        count = write_transcripts(sys.stdout, args.policy, args.tasks, args.seeds, args.split, allow_eval, args.queue_length)
    else:
        with open(args.out, "w", encoding="utf-8") as out:
            count = write_transcripts(out, args.policy, args.tasks, args.seeds, args.split, allow_eval, args.queue_length)
    print(f"wrote {count} episodes to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
