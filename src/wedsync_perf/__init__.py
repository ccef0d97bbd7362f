"""wedsync-perf: the performance layer of the WedSync API.

Submodules hold the capabilities (`priorities`, `calendar`, `settings`, `monitoring`,
`caching`, `database`, `scaling`, `loadgen`); this package re-exports the few names
every user needs.
"""

from wedsync_perf.calendar import Regime, WeddingCalendar
from wedsync_perf.errors import ConfigError, WedsyncPerfError
from wedsync_perf.priorities import PriorityClass, declare
from wedsync_perf.settings import PerfSettings, load_settings

__all__ = [
    "ConfigError",
    "PerfSettings",
    "PriorityClass",
    "Regime",
    "WeddingCalendar",
    "WedsyncPerfError",
    "declare",
    "load_settings",
]
