"""An index for the address order, `ordering=address__country,address__city`, and for
`address__country=AT&ordering=address__city`, which it serves after the equality.

Country and city are the address's hierarchy, so the two are as correlated as keys get: the
first country's 323,000 contacts at 3M were sorted by city (0.47 s), and a country's cities
were found only after walking every other country's in the city index (0.47 s). With it,
both are a range of one index. About 4 s of the seed at 3M and 90 MB.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0015_birthday_month_day_index")]
    operations = [
        migrations.RunSQL(
            "SET LOCAL statement_timeout = 0;"  # the app's per-request limit
            "CREATE INDEX crm_contactrow_address_country_city_id "
            "ON crm_contactrow (address_country, address_city, id)",
            "DROP INDEX crm_contactrow_address_country_city_id",
        )
    ]
