"""The trigram indexes' pending list bounded to 256 kB (crm/db/indexes.sql says why), on
databases whose indexes exist already."""

from django.db import migrations

from crm.db import all_sql, index_options

SET_OPTIONS = "\n".join(f"ALTER INDEX {name} SET ({options});"
                        for name, options in index_options().items())  # fmt: skip
RESET_OPTIONS = "\n".join(f"ALTER INDEX {name} RESET (gin_pending_list_limit);"
                          for name in index_options())  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("crm", "0004_readafter")]
    operations = [migrations.RunSQL(all_sql() + "\n" + SET_OPTIONS, RESET_OPTIONS)]
