"""`python3 src/worker/torch/mpx_torch [...]` (or `python3 -m mpx_torch` with src/worker/torch on the path)."""
import os
import sys

if __package__ in (None, ''):
    # Run as a directory: Python put the package folder itself on sys.path; import it as a package from its parent.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from mpx_torch.cli import main  # noqa: E402  (after the path fix)

sys.exit(main(sys.argv[1:]))
