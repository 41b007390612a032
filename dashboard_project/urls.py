"""Top-level addresses: the site's sign-in and sign-out, the admin, the dashboard and the webhooks."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from streams.hooks.intake import receive_hook

urlpatterns = [
    # The site's own sign-in for supervisors; the admin keeps its own, which admits staff only.
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    # POST only (with the CSRF token): a link or an image on another site cannot sign anyone out.
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Browsers ask for /favicon.ico whatever the page says; send them to the real icon.
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("hooks/<slug:slug>/", receive_hook, name="webhook"),
    path("", include("dashboard.urls")),
]
