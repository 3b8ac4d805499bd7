"""The challenge's three tables, plus one read model that the list API queries.

`ContactRow` is a denormalised copy of AppUser + Address + CustomerRelationship, one row
per contact, kept in sync by triggers (crm/db/contactrow_sync.sql). Why: sorting a LEFT
JOIN by a column of the outer side (relationship points) or by an address column with `id` as the
tie-break cannot be driven by any index, so such pages cost seconds at 3M contacts. On one
table, every `(field, id)` b-tree index drives its sort in both directions.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class Gender(models.TextChoices):
    FEMALE = "F", "female"
    MALE = "M", "male"
    DIVERSE = "X", "diverse / non-binary"
    UNSPECIFIED = "U", "not specified"


class Address(models.Model):
    id = models.BigAutoField(primary_key=True)
    street = models.CharField(max_length=200)
    street_number = models.CharField(max_length=16)  # "12", "12a", "3/4"
    city_code = models.CharField(max_length=16)  # postal code, kept as text: "01067", "A-1010"
    city = models.CharField(max_length=100)
    country = models.CharField(max_length=2)  # ISO 3166-1 alpha-2

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country__regex=r"^[A-Z]{2}$"), name="address_country_iso2"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.street} {self.street_number}, {self.city_code} {self.city}, {self.country}"


# What a customer id and a phone number may hold, checked by the database too: the search
# relies on it (a term with a character outside both, `王`, is looked for in names and places
# alone, crm/selectors/facts.py resolve_held_terms), and crm/contact_input.py validates by it.
CUSTOMER_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
E164_PATTERN = r"\+[1-9][0-9]{1,14}"


class AppUser(models.Model):
    id = models.BigAutoField(primary_key=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    gender = models.CharField(max_length=1, choices=Gender.choices, default=Gender.UNSPECIFIED)
    customer_id = models.CharField(max_length=32, unique=True)
    phone_number = models.CharField(max_length=20)  # E.164, e.g. +436641234567
    created = models.DateTimeField(db_default=Now())
    address = models.ForeignKey(Address, on_delete=models.PROTECT, related_name="appusers")
    birthday = models.DateField(null=True, blank=True)
    # Set by the database on insert and by a trigger on every UPDATE that changes the row
    # (also for bulk and raw-SQL updates, which Django's auto_now would miss).
    last_updated = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(gender__in=Gender.values), name="appuser_gender_code"
            ),
            models.CheckConstraint(
                condition=models.Q(customer_id__regex=f"^{CUSTOMER_ID_PATTERN}$"),
                name="appuser_customer_id_chars",
            ),
            models.CheckConstraint(
                condition=models.Q(phone_number__regex=f"^{E164_PATTERN}$"),
                name="appuser_phone_number_e164",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.customer_id})"


class CustomerRelationship(models.Model):
    id = models.BigAutoField(primary_key=True)
    appuser = models.OneToOneField(AppUser, on_delete=models.CASCADE, related_name="relationship")
    points = models.IntegerField(default=0)
    created = models.DateTimeField(db_default=Now())
    last_activity = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"relationship of {self.appuser_id}: {self.points} points"


class PointsChange(models.Model):
    """One change of a contact's points balance, with its reason: the ledger that
    POST /crm/appusers/<id>/points appends to in the same transaction as the change."""

    id = models.BigAutoField(primary_key=True)
    appuser = models.ForeignKey(AppUser, on_delete=models.CASCADE, related_name="points_changes")
    delta = models.IntegerField()
    reason = models.CharField(max_length=200)
    balance = models.IntegerField()  # the balance after this change
    created = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"{self.delta:+d} points for {self.appuser_id}: {self.reason}"


class ContactRow(models.Model):
    """Read model: one row per AppUser, maintained by triggers (crm/db/contactrow_sync.sql).
    Never written by Python."""

    id = models.BigIntegerField(primary_key=True)  # = AppUser.id
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    gender = models.CharField(max_length=1)
    customer_id = models.CharField(max_length=32)
    phone_number = models.CharField(max_length=20)
    created = models.DateTimeField()
    birthday = models.DateField(null=True)
    last_updated = models.DateTimeField()
    address_id = models.BigIntegerField()
    address_street = models.CharField(max_length=200)
    address_street_number = models.CharField(max_length=16)
    address_city_code = models.CharField(max_length=16)
    address_city = models.CharField(max_length=100)
    address_country = models.CharField(max_length=2)
    relationship_id = models.BigIntegerField(null=True)
    relationship_points = models.IntegerField(null=True)
    relationship_created = models.DateTimeField(null=True)
    relationship_last_activity = models.DateTimeField(null=True)
    # lower(unaccent(...)) of the searchable fields, for the trigram index behind `search`.
    search_text = models.TextField()

    class Meta:
        # Its triggers, indexes and statistics: crm/db/ (migration 0002).
        db_table = "crm_contactrow"

    def __str__(self) -> str:
        return f"contact row {self.id}"


class ApiToken(models.Model):
    """A per-user bearer token for the JSON API. Only its SHA-256 is stored; the token itself
    is shown once, when created (manage.py create_api_token)."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)  # lookup on every API request
    prefix = models.CharField(max_length=8)  # shown in listings so a token can be revoked
    created = models.DateTimeField(auto_now_add=True)
    revoked = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}... of {self.user}"
