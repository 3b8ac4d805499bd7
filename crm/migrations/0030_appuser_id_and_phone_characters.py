"""What a customer id and a phone number may hold, checked by the database (crm/models.py):
the search looks for a term outside both in names and places alone."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("crm", "0029_name_key_statistics")]
    operations = [
        migrations.AddConstraint(
            model_name="appuser",
            constraint=models.CheckConstraint(
                condition=models.Q(("customer_id__regex", "^[A-Za-z0-9][A-Za-z0-9._-]*$")),
                name="appuser_customer_id_chars",
            ),
        ),
        migrations.AddConstraint(
            model_name="appuser",
            constraint=models.CheckConstraint(
                condition=models.Q(("phone_number__regex", "^\\+[1-9][0-9]{1,14}$")),
                name="appuser_phone_number_e164",
            ),
        ),
    ]
