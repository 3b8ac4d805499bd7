"""Everything the app adds to its tables beyond the models: the read model's triggers,
crm_count(), the folding functions, the indexes and statistics, from their one definition
in crm/db/ (idempotent statements, so a database that has them already keeps them)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]
    operations = [
        migrations.RunSQL(all_sql(), migrations.RunSQL.noop),
        # statistics of the indexed expressions, which the planner reads for the patterns
        migrations.RunSQL("ANALYZE crm_contactrow", migrations.RunSQL.noop),
    ]
