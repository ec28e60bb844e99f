"""``edge-agent doctor``: check a line PC's setup and say what to fix.

:func:`run_doctor` loads the configuration and checks the PLC connections, the broker
(TCP, TLS, login), the buffer's disk and the clock; each finding is a :class:`Check`
(``ok``, ``warn`` or ``fail``, with a detail and a fix). One module per check group.
"""

from edge_agent.doctor.results import (
    EXIT_CONFIG,
    EXIT_FAIL,
    EXIT_OK,
    Check,
    Status,
    counts,
    exit_code,
    worst,
)
from edge_agent.doctor.runner import DEFAULT_TIMEOUT_S, DoctorReport, run_doctor

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "EXIT_CONFIG",
    "EXIT_FAIL",
    "EXIT_OK",
    "Check",
    "DoctorReport",
    "Status",
    "counts",
    "exit_code",
    "run_doctor",
    "worst",
]
