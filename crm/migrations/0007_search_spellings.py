"""crm_search_pattern() (crm/db/schema.sql): a search term matches every German spelling of
itself (ä/ae, ö/oe, ü/ue, å/aa), so `mueller`, `muller` and `müller` find one another."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0006_count_cost_rule")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
