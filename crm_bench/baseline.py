"""The naive "before" of the contact list: GET /crm/appusers/baseline (bench app only).

This is the list as it is typically first written with Django REST framework: a
ListAPIView over `AppUser.objects.all()`, nested ModelSerializers for the address and the
relationship, django-filter for the filters, OrderingFilter for sorting and
PageNumberPagination with an exact COUNT(*). It is deliberately NOT optimised (no
select_related/prefetch_related, no read model, OFFSET paging, no tie-break beyond what the
client asks for): every row costs one query for its address and one for its relationship
(N+1), and every page costs a full COUNT. It is kept only as the yardstick that the
optimised list (crm/views.py) is measured and compared against; do not "fix" it. Its
parameters are documented in crm_bench/openapi.py, not in the served API document.

Differences from the optimised list, by design of the typical version: unknown or invalid
parameters are silently ignored (django-filter and OrderingFilter drop what they do not
know), `search` is DRF's SearchFilter (icontains, so not accent-insensitive), an ordering
is used as given (without `id` as the final tie-break) and sorts names by code point (not
in dictionary order), and there are no cursors.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django_filters import rest_framework as django_filters
from rest_framework import filters, generics, pagination, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

from crm.models import Address, AppUser, CustomerRelationship

TEXT_LOOKUPS = ["exact", "in", "isnull", "iexact", "contains", "icontains", "startswith",
                "istartswith", "endswith", "iendswith"]  # fmt: skip
NUMBER_LOOKUPS = ["exact", "in", "isnull", "gt", "gte", "lt", "lte", "range"]
DATE_LOOKUPS = [*NUMBER_LOOKUPS, "year", "month", "day"]

FIELD_NAMES = [
    "id", "first_name", "last_name", "gender", "customer_id", "phone_number", "created",
    "birthday", "last_updated", "address__id", "address__street", "address__street_number",
    "address__city_code", "address__city", "address__country", "relationship__id",
    "relationship__points", "relationship__created", "relationship__last_activity",
]  # fmt: skip


class AddressSerializer(serializers.ModelSerializer):
    class Meta:
        model = Address
        fields = ["id", "street", "street_number", "city_code", "city", "country"]


class RelationshipSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerRelationship
        fields = ["id", "points", "created", "last_activity"]


class AppUserSerializer(serializers.ModelSerializer):
    address = AddressSerializer(read_only=True)
    relationship = RelationshipSerializer(read_only=True, allow_null=True)
    avatar_url = serializers.SerializerMethodField()

    class Meta:
        model = AppUser
        fields = ["id", "first_name", "last_name", "gender", "customer_id", "phone_number",
                  "created", "birthday", "last_updated", "address", "relationship",
                  "avatar_url"]  # fmt: skip

    def get_avatar_url(self, obj: AppUser) -> str:
        return f"/crm/appusers/{obj.pk}/avatar.svg"


class AppUserFilterSet(django_filters.FilterSet):
    class Meta:
        model = AppUser
        fields: ClassVar[dict[str, list[str]]] = {
            "id": NUMBER_LOOKUPS,
            "first_name": TEXT_LOOKUPS,
            "last_name": TEXT_LOOKUPS,
            "gender": TEXT_LOOKUPS,
            "customer_id": TEXT_LOOKUPS,
            "phone_number": TEXT_LOOKUPS,
            "created": DATE_LOOKUPS,
            "birthday": DATE_LOOKUPS,
            "last_updated": DATE_LOOKUPS,
            "address__id": NUMBER_LOOKUPS,
            "address__street": TEXT_LOOKUPS,
            "address__street_number": TEXT_LOOKUPS,
            "address__city_code": TEXT_LOOKUPS,
            "address__city": TEXT_LOOKUPS,
            "address__country": TEXT_LOOKUPS,
            "relationship__id": NUMBER_LOOKUPS,
            "relationship__points": NUMBER_LOOKUPS,
            "relationship__created": DATE_LOOKUPS,
            "relationship__last_activity": DATE_LOOKUPS,
        }

    @classmethod
    def filter_for_field(
        cls, field: Any, field_name: str, lookup_expr: str | None = None
    ) -> django_filters.Filter:
        made = super().filter_for_field(field, field_name, lookup_expr)
        if lookup_expr == "year":  # the ORM builds datetime(year, 1, 1): outside 1..9999, a 500
            made.extra.update(min_value=1, max_value=9999)
        return made


class BaselinePagination(pagination.PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 500


class BaselineAppUserList(generics.ListAPIView):
    queryset = AppUser.objects.all()  # no select_related: N+1 queries, on purpose
    serializer_class = AppUserSerializer
    pagination_class = BaselinePagination
    filter_backends = [django_filters.DjangoFilterBackend, filters.SearchFilter,
                       filters.OrderingFilter]  # fmt: skip
    filterset_class = AppUserFilterSet
    search_fields = ["first_name", "last_name", "customer_id", "phone_number",
                     "address__street", "address__city"]  # fmt: skip
    ordering_fields = FIELD_NAMES
    ordering = ["id"]
    # crm.auth.AuthenticationRequiredMiddleware authenticates every request already.
    authentication_classes = []
    permission_classes = []


def errors_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's errors in the project's body, {"errors": [{"param", "message"}]} (settings)."""
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"errors": _flatten(response.data)}
    return response


def _flatten(data: Any, param: str = "") -> list[dict[str, str]]:
    if isinstance(data, dict):
        return [e for key, value in data.items()
                for e in _flatten(value, "" if key == "detail" else str(key))]  # fmt: skip
    if isinstance(data, list):
        return [e for item in data for e in _flatten(item, param)]
    return [{"param": param, "message": str(data)}]
