"""mpx's PyTorch engine: run with `python3 src/worker/torch/mpx_torch` (modes in cli.py, findings in docs/torch-engine-notes.md)."""
