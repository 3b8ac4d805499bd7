"""A trigram index of the folded postal code (crm/db/indexes.sql): its substring filters had
no index path."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0010_search_spellings_like")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
