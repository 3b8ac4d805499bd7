"""crm_walk_on() walks on without a block sample when the first step found half the page or
more (crm/db/walk.sql): a new argument, so the old signature is dropped."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0030_appuser_id_and_phone_characters")]
    operations = [
        migrations.RunSQL(
            "DROP FUNCTION IF EXISTS crm_walk_on(text, text, text, text[], integer, integer, "
            "bigint, float8, integer, integer)",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(all_sql(), migrations.RunSQL.noop),
    ]
