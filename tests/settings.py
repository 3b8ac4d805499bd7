"""The test suite's settings: production's (config/settings.py) with the bench app installed
(CRM_BENCH=1), since the baseline, the ablations and the bench are tested too.

Set here, before config.settings is imported: pytest-django loads the settings before any
conftest. tests/test_settings.py checks production's own settings in a fresh interpreter.
Subprocesses the tests start inherit CRM_BENCH=1 unless they drop it.
"""

import os

os.environ["CRM_BENCH"] = "1"

from config.settings import *  # noqa: F403
