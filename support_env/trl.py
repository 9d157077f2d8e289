"""The TRL adapter at its public path: `from support_env.trl import SupportToolEnv`.

    from trl import GRPOConfig, GRPOTrainer
    from support_env.trl import SupportToolEnv

    trainer = GRPOTrainer(model=..., train_dataset=rows_of_task_id_and_seed, environment_factory=SupportToolEnv, ...)

See support_env/access/trl.py for the contract, and examples/train_grpo.py.
"""

from .access.trl import SupportToolEnv

__all__ = ["SupportToolEnv"]
