from django.urls import path

from crm import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("crm/appusers", views.appuser_list, name="appuser-list"),
]
