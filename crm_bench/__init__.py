"""The bench-only app: what `manage.py bench` measures the list against and with.

Installed only when CRM_BENCH=1 (config/settings.py), as the bench's own gunicorn runs
(crm/lib/bench.py); production settings install neither it nor Django REST framework and
django-filter, which only it uses (dev dependencies). It holds:

- floor.py: GET /crm/appusers/floor, the raw-SQL floor of this stack;
- baseline.py: GET /crm/appusers/baseline, the naive DRF list (the "before");
- ablations.py: the X-Bench-Ablation switches, applied by its middleware;
- openapi.py: the baseline's operation, which the served API document leaves out.
"""
