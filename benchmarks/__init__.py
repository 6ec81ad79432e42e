"""supportloop's benchmarks: each module answers one question against a named baseline.

Run one from the repository root as ``python -m benchmarks.NAME`` (``--help`` for its options);
``benchmarks/README.md`` lists them with their results files. Importing the package sets the
offline defaults (no Hub, no telemetry) before any model library is loaded.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
