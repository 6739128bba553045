"""Failures with their own answer; torch-free, so a run that fails before torch loads is still classified."""


class Unsupported(Exception):
    """This PyTorch cannot run the run's policy on this device (status `unsupported`)."""


class MemoryBudgetExceeded(Exception):
    """The measured peak passed the run's memory budget (status `oom`)."""

    def __init__(self, reached_bytes, limit_bytes):
        super().__init__(
            f'the measured peak reached {reached_bytes} bytes, above the memory budget of {limit_bytes} bytes'
        )
        self.reached_bytes = reached_bytes
