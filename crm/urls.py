from django.urls import path

from crm import avatar_views, contact_views, dashboard, export_views, views

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("crm/", dashboard.dashboard, name="dashboard-crm"),
    path("healthz", views.healthz, name="healthz"),
    path("crm/appusers", contact_views.appusers, name="appuser-list"),
    path("crm/appusers/<int:contact_id>", contact_views.appuser, name="appuser"),
    path(
        "crm/appusers/<int:contact_id>/points",
        contact_views.appuser_points,
        name="appuser-points",
    ),
    path("crm/openapi.json", export_views.openapi_json, name="openapi-json"),
    path("crm/docs", export_views.docs, name="api-docs"),
    path("crm/appusers/export.csv", export_views.export_csv, name="appuser-export-csv"),
    path("crm/appusers/export.ndjson", export_views.export_ndjson, name="appuser-export-ndjson"),
    path("crm/appusers/<int:contact_id>/avatar.svg", avatar_views.avatar_svg, name="avatar-svg"),
    path("crm/appusers/<int:contact_id>/avatar.png", avatar_views.avatar_png, name="avatar-png"),
]
