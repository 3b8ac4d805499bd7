"""Drop the (column DESC, id) indexes of 0005.

The tie-break now runs in the direction of the last ordering key (crm/params.py), so
`ORDER BY column DESC, id DESC` is a backward scan of the (column, id) index. Nine fewer
indexes: about 15 s less in the seed at 3M contacts, 860 MB less on disk, and nine fewer
index entries to write on every change of a contact.
"""

from django.db import migrations

TIED = [
    "first_name", "last_name", "gender", "address_street", "address_street_number",
    "address_city_code", "address_city", "address_country", "relationship_points",
]  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [("crm", "0010_count_cheaper_checks")]
    operations = [
        migrations.RunSQL(
            [f"DROP INDEX crm_contactrow_{c}_desc_id" for c in TIED],
            [f"CREATE INDEX crm_contactrow_{c}_desc_id ON crm_contactrow ({c} DESC, id)"
             for c in TIED],  # fmt: skip
        )
    ]
