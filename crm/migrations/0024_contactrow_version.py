"""The read model's version, for counted results kept between pages (crm/db/version.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0023_search_term_tested_last")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
