"""The bench's views, included by config/urls.py only when the bench app is installed."""

from django.urls import path

from crm_bench import baseline, floor

urlpatterns = [
    path("crm/appusers/floor", floor.appuser_floor, name="appuser-floor"),
    path("crm/appusers/baseline", baseline.BaselineAppUserList.as_view(), name="appuser-baseline"),
]
