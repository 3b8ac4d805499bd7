"""crm_readafter (crm/db/readafter.sql): read-your-writes with replicas."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_points_function")]
    operations = [migrations.RunSQL(all_sql(), "DROP TABLE IF EXISTS crm_readafter")]
