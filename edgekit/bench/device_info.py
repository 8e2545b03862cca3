"""The machine a benchmark ran on: :mod:`edgekit.machine`, which ``edgekit doctor`` shares.

Re-exported here for the benchmark code that imports it from this module.
"""

from edgekit.machine import (  # noqa: F401
    GOVERNOR_PATH, describe, governor, governor_warning, host_label,
)
