"""Top-level addresses: the admin (which also holds the login page), the dashboard and the webhooks."""

from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.urls import include, path

from streams.webhooks import receive_hook

# Supervisors sign in on the admin's login page (settings.LOGIN_URL) but are not staff;
# the admin's own form would refuse them. The admin itself still requires staff.
admin.site.login_form = AuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("hooks/<slug:slug>/", receive_hook, name="webhook"),
    path("", include("dashboard.urls")),
]
