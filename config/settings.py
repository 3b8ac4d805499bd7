"""One settings module; every knob comes from the environment (see config/env.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

from config import embedded_pg, replication
from config.database import parse_database_url, parse_replica_urls
from config.env import ImproperEnvironment, env_bool, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept under .data/."""
    if key := env_str("SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [
    h for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "crm",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "crm.middleware.MethodNotAllowedMiddleware",  # before the CSRF check: 405, not 403
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crm.auth.AuthenticationRequiredMiddleware",
    "crm.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The bench app (crm_bench/: the floor and baseline views, the X-Bench-Ablation switches)
# with Django REST framework and django-filter, which only its baseline uses (and which are
# dev dependencies): only for the bench's own server (crm/lib/bench.py) and the test suite
# (tests/settings.py), with CRM_BENCH=1. Production installs none of them and routes to none.
CRM_BENCH = env_bool("CRM_BENCH", False)
if CRM_BENCH:
    INSTALLED_APPS += ["rest_framework", "django_filters", "crm_bench"]
    # last: it wraps the list view alone, after authentication (crm_bench/ablations.py)
    MIDDLEWARE.append("crm_bench.ablations.AblationMiddleware")
    REST_FRAMEWORK = {
        "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
        "UNAUTHENTICATED_USER": None,
        "EXCEPTION_HANDLER": "crm_bench.baseline.errors_exception_handler",
    }

# django-silk, the challenge's profiler, for local profiling only: SILK=1 (then migrate).
SILK = env_bool("SILK", False)
if SILK:
    INSTALLED_APPS.append("silk")
    MIDDLEWARE.insert(0, "silk.middleware.SilkyMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

# REPLICAS=N: the embedded primary and N streaming replicas of config/replication.py, in a
# directory of their own (the default server keeps wal_level=minimal for a fast seed).
REPLICAS = env_int("REPLICAS", 0, maximum=4)
if REPLICAS and (env_str("DATABASE_URL") or env_str("DATABASE_REPLICA_URLS")):
    raise ImproperEnvironment(
        "REPLICAS=N runs its own embedded primary and replicas; with DATABASE_URL, name the "
        "replicas in DATABASE_REPLICA_URLS instead"
    )
if REPLICAS:
    DATABASE_URL, _replica_urls = replication.ensure_cluster(replicas=REPLICAS)
else:
    DATABASE_URL = env_str("DATABASE_URL") or embedded_pg.ensure_running()
    _replica_urls = [env_str("DATABASE_REPLICA_URLS")]
STATEMENT_TIMEOUT_MS = env_int("STATEMENT_TIMEOUT_MS", 5000, minimum=0)
_database = parse_database_url(DATABASE_URL)
_database["OPTIONS"].setdefault("connect_timeout", "2")  # fail fast when the server is down
# Server-side binding with prepared statements: the token check, the count and each page
# shape are parsed once per connection (0.2 ms of a 1.1 ms first page, 0.6 ms of a filtered
# one). force_custom_plan below still plans every execution that has parameters with their
# values, so a generic plan can never drop the trigram index for a search or misjudge a
# filter; a statement without parameters keeps one plan per connection.
_database["OPTIONS"]["server_side_binding"] = True
_database["OPTIONS"]["prepare_threshold"] = 1
# The planner settings the app's plans are made for, set on each of its connections, so a
# stock server (PostgreSQL 15 with random_page_cost 4, work_mem 4MB, effective_cache_size
# 4GB) plans the same queries as the embedded one (config/embedded_pg.py): with 4, a range
# of a (column, id) index looked dearer than a scan and sort. They are plan choices only;
# memory and disk stay the server's.
#
# Parallel workers only for a statement that reads hundreds of thousands of rows: a walk's
# fallback that scans the table (crm/selectors/strategies.py first_rows), 0.6-1.1 s at 3M in
# one process, takes about 60% of that with two workers. The planner charges a parallel plan
# 20,000 units to start (stock: 1,000, at which a page of 5 ms got workers for nothing) and
# the walk's gating condition sits above the workers' Gather (head_or_fallback), so that
# they start only when the fallback runs. The random survey at 3M, runs alternated with and
# without: PostgreSQL 15 p50 20.4 -> 18.7 ms, p99 570 -> 485, max 2.4 -> 1.3 s, the
# requests' total time -13%; embedded, max 1.10 -> 0.75 s, the p50 within the noise
# (docs/performance-notes.md). Exports get workers too (crm/export.py).
#
# Prefetch for bitmap heap scans: a capped count reads up to 10,000 matches' table blocks
# (crm/db/count.sql), which on a stock PostgreSQL 15 (shared_buffers 128MB) come from the
# page cache or the disk, one read at a time at its default of 1. The 237 capped first pages
# of a random survey at 3M (seed 17171), each run after a restart of PostgreSQL 15 and
# dropping the page cache: 22.2 / 21.4 s at 1, 14.7 / 15.6 s at 16 (64: 15.3 / 14.8 / 18.1),
# slowest 3.4 s -> 0.9-1.1 s; warm, 13.8 / 14.0 s against 14.4 / 11.4. 16 is PostgreSQL 18's
# default, so the embedded server is unchanged.
#
# An index entry costs the planner 0.005 units (with cpu_operator_cost, 0.0075), a table
# page fetched from memory 1.1: at 3M a bitmap index scan reads about 6,000 entries a ms
# and a heap page is about a microsecond, so an entry was priced 10-20 times below its time
# and the planner ANDed huge bitmaps (the million rows of `last_updated__gt=2025-11-09`,
# 150 ms) with a few thousand rows it could have filtered. At 0.05, random survey at 3M,
# runs alternated with and without (each request by the faster of its two): embedded seed
# 83838 total 22.6 -> 18.8 s, p99 383 -> 337 ms, over 100 ms 54 -> 37; PostgreSQL 15 seed
# 85858 total 31.4 -> 27.3 s, p99 664 -> 589 ms, over 100 ms 70 -> 63.
SESSION_SETTINGS = {
    "statement_timeout": str(STATEMENT_TIMEOUT_MS),
    "max_parallel_workers_per_gather": "2",
    "parallel_setup_cost": "20000",
    "plan_cache_mode": "force_custom_plan",
    "random_page_cost": embedded_pg.PLANNER_SETTINGS["random_page_cost"],
    "effective_cache_size": embedded_pg.PLANNER_SETTINGS["effective_cache_size"],
    "work_mem": embedded_pg.PLANNER_SETTINGS["work_mem"],
    "jit": "off",
    "effective_io_concurrency": "16",
    "cpu_index_tuple_cost": "0.05",
}
_database["OPTIONS"]["options"] = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())
_connection = {
    "CONN_MAX_AGE": env_int("CONN_MAX_AGE", 600),
    "CONN_HEALTH_CHECKS": True,  # a connection broken by a restart is replaced, not reused
}
DATABASES = {
    "default": {
        **_database,
        **_connection,
        # lets two test runs share one server (default: test_<NAME>)
        "TEST": {"NAME": env_str("TEST_DATABASE_NAME") or None},
    }
}
# Read replicas (crm/replicas.py routes the list's reads to them): replica_1, replica_2, ...
# with the primary's connection options. Under test they mirror the test database.
for _number, _replica in enumerate(parse_replica_urls(",".join(_replica_urls)), start=1):
    _replica["OPTIONS"] = {**_database["OPTIONS"], **_replica["OPTIONS"]}
    DATABASES[f"replica_{_number}"] = {**_replica, **_connection, "TEST": {"MIRROR": "default"}}
REPLICA_ALIASES = [alias for alias in DATABASES if alias != "default"]
# A replica further behind the primary than this is skipped until it catches up.
REPLICA_MAX_LAG_MS = env_int("REPLICA_MAX_LAG_MS", 1000, minimum=100, maximum=3_600_000)
DATABASE_ROUTERS = ["crm.replicas.ReplicaRouter"] if REPLICA_ALIASES else []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve from the apps' static/ without a collectstatic step

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
