from django.urls import path

from crm import avatar_views, contact_views, dashboard, export_views, views
from crm.replicas import replica_reads

# replica_reads: the reads a replica may serve (GET and HEAD only: POST /crm/appusers
# creates): the list and its counts, the exports and the avatars (crm/replicas.py). One
# contact's GET, the read before an edit with its ETag, stays on the primary.
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("crm/", dashboard.dashboard, name="dashboard-crm"),
    path("healthz", views.healthz, name="healthz"),
    path("crm/appusers", replica_reads(contact_views.appusers), name="appuser-list"),
    path("crm/appusers/<int:contact_id>", contact_views.appuser, name="appuser"),
    path(
        "crm/appusers/<int:contact_id>/points",
        contact_views.appuser_points,
        name="appuser-points",
    ),
    path("crm/openapi.json", export_views.openapi_json, name="openapi-json"),
    path("crm/docs", export_views.docs, name="api-docs"),
    path(
        "crm/appusers/export.csv", replica_reads(export_views.export_csv), name="appuser-export-csv"
    ),
    path(
        "crm/appusers/export.ndjson",
        replica_reads(export_views.export_ndjson),
        name="appuser-export-ndjson",
    ),
    path(
        "crm/appusers/<int:contact_id>/avatar.svg",
        replica_reads(avatar_views.avatar_svg),
        name="avatar-svg",
    ),
    path(
        "crm/appusers/<int:contact_id>/avatar.png",
        replica_reads(avatar_views.avatar_png),
        name="avatar-png",
    ),
]
