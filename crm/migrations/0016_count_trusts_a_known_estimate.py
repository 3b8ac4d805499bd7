"""crm_count() takes the caller's estimate of a search term's matches (`known`), and a
trusted estimate of at most the cap goes to the capped count without a block sample
(crm/db/count.sql)."""

from django.db import migrations

from crm.db import all_sql


class Migration(migrations.Migration):
    dependencies = [("crm", "0015_count_path_cost")]
    operations = [migrations.RunSQL(all_sql(), migrations.RunSQL.noop)]
