"""crm_count() draws its block sample whenever reading every match would cost more than its
budget, not only when the planner expects 100 rows or more (crm/db/count.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_city_code_trigram")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
