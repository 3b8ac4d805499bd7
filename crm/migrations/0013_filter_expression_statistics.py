"""Statistics for every expression a filter compares: upper() of each text field, and the
month and day of each timestamp taken in UTC (crm/db/indexes.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0012_count_samples_costly_plans")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
