import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# At worker start, not in some user's first request (which took 0.35 s): import every view
# through the URLconf and load the avatar fonts. It also makes a worker's memory at start
# its memory at work, which is what the load test's growth check compares against.
get_resolver().url_patterns  # noqa: B018
from django.conf import settings  # noqa: E402

from crm import avatars, replicas  # noqa: E402  (needs the settings configured above)

avatars.warm_up()
# The replicas' health checks too: a worker that got no request while others warmed up
# would otherwise send its first reads to the primary while its first checks come in.
if settings.REPLICA_ALIASES:
    replicas.HEALTH.ensure_started()
