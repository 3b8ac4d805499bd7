"""The count (crm/db/count.sql): a trusted estimate near the cap goes to the capped count
without a block sample, and a count that reads an index alone keeps its page's columns by
id."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0024_contactrow_version")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
