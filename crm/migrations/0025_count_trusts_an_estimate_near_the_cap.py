"""A trusted estimate near the cap goes to the capped count without a block sample
(crm/db/count.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0024_contactrow_version")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
