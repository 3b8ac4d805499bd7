"""crm_walk_on() marked PARALLEL RESTRICTED, so that the fallback beside it may be planned
with workers (crm/db/walk.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0026_walk_probe")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
