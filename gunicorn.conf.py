"""Settings every gunicorn started from the project's root reads (`make run`, the bench,
the tests' live servers): gunicorn loads ./gunicorn.conf.py by default."""

# The longest request line gunicorn takes (its default is 4094). A list URL with a long
# `__in` list or many filters fits; a longer one is answered 414 by gunicorn itself, before
# the application (documented in the OpenAPI document as the URITooLong response).
limit_request_line = 8190
