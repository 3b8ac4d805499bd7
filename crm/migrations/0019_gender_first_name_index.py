"""An index for contacts of one gender sorted by first name (`gender=F&ordering=first_name`),
and for `ordering=gender,first_name`.

First names follow the gender, so the first-name index holds long runs of the other
gender's names between those wanted: the first page found its 26 women at once, but the
next pages walked 12,000 men's rows (`Ahmed`, `Alexander`, ...) before the next woman,
17-35 ms each at 3M contacts, and `gender=X` 10-19 ms. With it each page is a range of one
index after the equality (`ORDER_INDEXES` in crm/fields.py). About 2 s of the seed at 3M
and 90 MB.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0018_field_trigram_indexes")]
    operations = [
        migrations.RunSQL(
            "SET LOCAL statement_timeout = 0;"  # the app's per-request limit
            "CREATE INDEX crm_contactrow_gender_first_name_id "
            "ON crm_contactrow (gender, first_name, id)",
            "DROP INDEX crm_contactrow_gender_first_name_id",
        )
    ]
