"""GRPO on support_env with TRL: one rollout per (task_id, seed) row of the train split.

    pip install "support-env[train]"          # trl, transformers, torch (CPU is enough for --tiny)
    python examples/train_grpo.py --tiny      # a tiny random Qwen3 on the CPU, in minutes
    SUPPORT_ENV_URL=http://localhost:7860 python examples/train_grpo.py \\
        --model Qwen/Qwen3-0.6B --tasks hard_mixed_queue --seeds 0-999 --max-steps 500

The environment is `support_env.trl.SupportToolEnv`, passed as TRL's
`environment_factory`: TRL makes one per rollout, calls `reset(**row)` with the
row's task_id, seed and split (the first prompt is appended to the row's user
message), offers its action methods to the model as tools, feeds back their
compact results (or the error of an invalid action), and scores each rollout with
its `get_reward()`: the episode's return, whose last step carries the grade. It
plays against the server at SUPPORT_ENV_URL over /ws, or in this process when the
variable is unset.

`--tiny` builds everything locally, downloading nothing: a byte-level BPE tokenizer
trained on the environment's own transcripts (with Qwen3's chat template, from TRL), and
a randomly initialised two-layer Qwen3. A random model never writes a tool call,
so `--tiny` first warms it up on the reference policy's transcripts
(support_env.agents.transcripts, what `python -m support_env.export` writes) for a
few hundred steps, then runs GRPO on one-ticket easy_classify queues. It prints the
steps, the tool calls per episode, the reward and the wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from support_env.agents.llm import SYSTEM_PROMPT  # noqa: E402
from support_env.agents.reference import ReferencePolicy  # noqa: E402
from support_env.agents.transcripts import episode_transcript  # noqa: E402
from support_env.episodes.catalogue import QUEUE_TASKS  # noqa: E402
from support_env.export import parse_seeds  # noqa: E402
from support_env.trl import SupportToolEnv  # noqa: E402

# The texts a Qwen3 chat marks turns, tool calls and thinking with.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEXT_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]


def dataset_rows(tasks: list[str], seeds: list[int], queue_length: int | None):
    """One row per (task, seed) of the train split; `prompt` carries the system prompt
    and an empty user message that `reset` fills with the episode's first prompt."""
    from datasets import Dataset

    rows = [
        {
            "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": ""}],
            "task_id": task,
            "seed": seed,
            "split": "train",
            **({"queue_length": queue_length} if queue_length else {}),
        }
        for task in tasks
        for seed in seeds
    ]
    random.Random(0).shuffle(rows)
    return Dataset.from_list(rows)


# --- --tiny: a tokenizer and a model made here -----------------------------------------------


ACTION_NAMES = [n for n in dir(SupportToolEnv) if not n.startswith("_") and n not in ("reset", "get_reward")]


def tool_schemas() -> list[dict]:
    """The tools exactly as GRPOTrainer renders them (transformers' get_json_schema of each method)."""
    from transformers.utils import get_json_schema

    env = SupportToolEnv()
    return [get_json_schema(getattr(env, name)) for name in ACTION_NAMES]



def tiny_tokenizer(transcripts: list[dict], vocab_size: int):
    """A byte-level BPE tokenizer (any text still encodes, byte by byte) with Qwen3's
    chat template, which TRL knows how to read tool calls from. It is trained on the
    transcripts as the chat template renders them, without splitting at spaces, so the
    texts every episode repeats (the tool schemas, the system prompt, the template's
    own words) become a few tokens each and the tiny run stays quick."""
    from trl.chat_template_utils import get_training_chat_template

    draft = _bpe_tokenizer(["-"], 300)  # only to render the template
    template = get_training_chat_template(draft)
    tools = tool_schemas()
    rendered = [
        draft.apply_chat_template(t["messages"], tools=tools, chat_template=template, tokenize=False, enable_thinking=False)
        for t in transcripts
    ]
    return _bpe_tokenizer(rendered, vocab_size)


def _bpe_tokenizer(corpus: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from trl.chat_template_utils import qwen3_chat_template

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=["<|im_start|>"],
        model_max_length=8192,
    )
    tokenizer.add_tokens(TEXT_TOKENS)  # plain added tokens, as in Qwen3: kept when decoding
    tokenizer.chat_template = qwen3_chat_template
    return tokenizer


def tiny_model(tokenizer, seed: int):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=8192, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def warm_start(model, tokenizer, transcripts: list[dict], steps: int, learning_rate: float) -> float:
    """Supervised steps on the transcripts' assistant turns (the tool calls), rendered
    with the chat template GRPO trains with: a random model learns the tool-call format.
    Returns the last loss."""
    import torch
    from trl.chat_template_utils import get_training_chat_template

    template = get_training_chat_template(tokenizer)
    tools = tool_schemas()
    examples = []
    for record in transcripts:
        encoded = tokenizer.apply_chat_template(
            record["messages"], tools=tools, chat_template=template, tokenize=True, return_dict=True,
            return_assistant_tokens_mask=True, enable_thinking=False,
        )
        ids = torch.tensor(encoded["input_ids"])
        labels = torch.where(torch.tensor(encoded["assistant_masks"]) == 1, ids, torch.tensor(-100))
        examples.append((ids, labels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    order = random.Random(1)
    loss = float("nan")
    for step in range(steps):
        ids, labels = examples[order.randrange(len(examples))]
        output = model(input_ids=ids[None], labels=labels[None])
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        loss = output.loss.item()
        if step % 50 == 0 or step == steps - 1:
            print(f"warm-start step {step + 1}/{steps}: loss {loss:.3f}", flush=True)
    return loss


def tiny_setup(args):
    """Tokenizer, model and the warm-up, all made here from the environment's own texts."""
    tasks, seeds = args.tasks, parse_seeds(args.seeds)
    transcripts = [
        episode_transcript(ReferencePolicy(), task, seed, "train", queue_length=args.queue_length)
        for task in tasks
        for seed in seeds[: args.warm_start_episodes]
    ]
    tokenizer = tiny_tokenizer(transcripts, args.vocab_size)
    model = tiny_model(tokenizer, args.seed)
    print(f"tiny Qwen3: {sum(p.numel() for p in model.parameters()):,} parameters, vocabulary {len(tokenizer):,}", flush=True)
    if args.warm_start_steps:
        warm_start(model, tokenizer, transcripts, args.warm_start_steps, args.warm_start_lr)
    return model, tokenizer


# --- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny random Qwen3 and a local tokenizer: CPU, minutes, no downloads")
    parser.add_argument("--model", default="Qwen/Qwen3-0.6B", help="model id or path (ignored with --tiny)")
    parser.add_argument("--tasks", default=None, help="comma-separated queue tasks (default: easy_classify with --tiny, else all three)")
    parser.add_argument("--seeds", default="0-63", help="train-split seeds, e.g. 0-999")
    parser.add_argument("--queue-length", type=int, default=None, help="tickets per queue (default: 1 with --tiny, else the task's)")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: 20 with --tiny, else 200)")
    parser.add_argument("--num-generations", type=int, default=4, help="rollouts per row (the GRPO group)")
    parser.add_argument("--max-completion-length", type=int, default=None, help="tokens over a whole episode (default: 512 with --tiny, else 4096)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--vocab-size", type=int, default=4000, help="--tiny: BPE vocabulary size")
    parser.add_argument("--warm-start-steps", type=int, default=300, help="--tiny: supervised steps on reference transcripts first (0: none)")
    parser.add_argument("--warm-start-episodes", type=int, default=32, help="--tiny: reference episodes per task to warm up on")
    parser.add_argument("--warm-start-lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None, help="default: a temporary directory")
    args = parser.parse_args(argv)
    args.tasks = (args.tasks or ("easy_classify" if args.tiny else ",".join(QUEUE_TASKS))).split(",")
    if args.tiny and args.queue_length is None:
        args.queue_length = 1
    max_steps = args.max_steps or (20 if args.tiny else 200)

    from transformers import set_seed
    from trl import GRPOConfig, GRPOTrainer

    set_seed(args.seed)
    started = time.monotonic()
    if args.tiny:
        model, tokenizer = tiny_setup(args)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tokenizer = AutoModelForCausalLM.from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
    setup_s = time.monotonic() - started

    output_dir = args.output_dir or tempfile.mkdtemp(prefix="support_env_grpo_")
    config = GRPOConfig(
        output_dir=output_dir,
        max_steps=max_steps,
        per_device_train_batch_size=args.num_generations,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length or (512 if args.tiny else 4096),
        learning_rate=args.learning_rate or (1e-4 if args.tiny else 1e-6),
        chat_template_kwargs={"enable_thinking": False},
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        use_cpu=args.tiny,
        gradient_checkpointing=not args.tiny,  # a tiny model needs no memory saving
        bf16=False,
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=dataset_rows(args.tasks, parse_seeds(args.seeds), args.queue_length),
        args=config,
        environment_factory=SupportToolEnv,  # its get_reward() is the reward: the episode's return
    )
    trained = time.monotonic()
    trainer.train()
    train_s = time.monotonic() - trained

    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    print("\nstep | tool calls per episode | tool failures | reward (mean) | reward (std)")
    for entry in logs:
        print(
            f"{entry['step']:>4} | {entry.get('tools/call_frequency', 0.0):>22.2f} | {entry.get('tools/failure_frequency', 0.0):>13.2f} "
            f"| {entry['reward']:>13.3f} | {entry.get('reward_std', 0.0):>12.3f}"
        )
    episodes = len(logs) * config.per_device_train_batch_size
    where = f"against {os.environ['SUPPORT_ENV_URL']}" if os.environ.get("SUPPORT_ENV_URL") else "in process"
    print(
        f"\n{len(logs)} GRPO steps, {episodes} episodes ({', '.join(args.tasks)}, queue length {args.queue_length or 'default'}), "
        f"{where}; set-up {setup_s:.1f} s, GRPO {train_s:.1f} s, wall time {time.monotonic() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
