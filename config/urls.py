from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("crm.urls")),
]

if settings.CRM_BENCH:  # the bench's floor and baseline views (config/settings.py)
    urlpatterns.append(path("", include("crm_bench.urls")))

if settings.SILK:  # local profiling only (config/settings.py)
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
