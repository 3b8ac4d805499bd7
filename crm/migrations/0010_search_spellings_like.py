"""crm_search_spellings() (crm/db/schema.sql): a search term's few spellings written out as
LIKE patterns, which searches use instead of the regular expression where there are few."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0009_words")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
