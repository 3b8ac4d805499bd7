"""The read model's triggers, column-wise (crm/db/contactrow_sync.sql says why): concurrent
writes to different tables of one contact no longer leave its read row stale. Also the
points ledger that POST /crm/appusers/<id>/points appends to."""

from pathlib import Path

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

# The current definition of the triggers: a later change edits that file and re-applies it.
SYNC_SQL = Path(__file__).resolve().parent.parent / "db" / "contactrow_sync.sql"


class Migration(migrations.Migration):
    dependencies = [("crm", "0020_count_second_sample")]
    operations = [
        migrations.RunSQL(SYNC_SQL.read_text(), migrations.RunSQL.noop),
        migrations.CreateModel(
            name="PointsChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("delta", models.IntegerField()),
                ("reason", models.CharField(max_length=200)),
                ("balance", models.IntegerField()),
                (
                    "created",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
                (
                    "appuser",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="points_changes",
                        to="crm.appuser",
                    ),
                ),
            ],
        ),
    ]
