"""Settings every gunicorn started from the project's root reads (`make run`, the bench,
the tests' live servers): gunicorn loads ./gunicorn.conf.py by default."""

# The longest request line gunicorn takes (its default is 4094). A list URL with a long
# `__in` list or many filters fits; a longer one is answered 414 by gunicorn itself, before
# the application (documented in the OpenAPI document as the URITooLong response).
limit_request_line = 8190

# Threads: a request spends about half its time waiting on PostgreSQL (a points change:
# 1.2 ms of Python, 1-2 ms in the database), which a sync worker cannot use, and gthread
# workers keep a client's connection alive between requests. Measured with the bench's write
# load (3M contacts, 8 clients changing points for 60 s, one more reading lists; 2026-12-05):
# 2 sync workers 471 changes/s, list p95 up to 27 ms, a sequential PATCH p50 5.0 ms; 2 workers
# x 4 threads 600 changes/s, list p95 up to 23 ms, PATCH p50 2.6 ms. Each thread holds its
# own database connection (2 x 4 per server here); Django and this app keep per-request
# state per thread (crm/replicas.py routes with a ContextVar).
worker_class = "gthread"
threads = 4
