from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from demo_site import views
from demo_site.metrics import metrics_view

urlpatterns = [
    path("", views.home, name="home"),
    path("account/", views.account, name="account"),
    path("api/whoami/", views.whoami, name="whoami"),
    path("api/async-whoami/", views.async_whoami, name="async-whoami"),
    path("billing/", views.billing, name="billing"),
    path("billing/history/", views.BillingHistory.as_view(), name="billing-history"),
    path("api/billing/", views.api_billing, name="api-billing"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("hijack/", include("hijack.urls")),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", metrics_view, name="metrics"),
]
