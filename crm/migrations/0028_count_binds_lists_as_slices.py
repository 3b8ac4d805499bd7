"""crm_sort_keys(), the sort keys of an array of values, for the IN lists that crm_count()
takes as one slice of its arguments (crm/sql.py Binder.array)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0027_walk_on_parallel_restricted")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
