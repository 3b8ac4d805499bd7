"""crm_points_add() (crm/db/points.sql): a points change in one call."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_database_objects")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
