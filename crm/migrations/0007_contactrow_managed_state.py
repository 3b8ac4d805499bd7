"""Mark the read model managed in Django's state only (its table comes from 0002's SQL),
so that `flush` (and so every TransactionTestCase) truncates it with the source tables."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0006_date_part_statistics")]
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AlterModelOptions(name="contactrow", options={})],
            database_operations=[],
        )
    ]
