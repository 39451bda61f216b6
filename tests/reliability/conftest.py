"""The reliability suite uses the same real SLURM fixtures as the integration tests."""

from integration.conftest import cancel_everything, slurm_cluster, slurm_env, slurm_monitor

__all__ = ["cancel_everything", "slurm_cluster", "slurm_env", "slurm_monitor"]
