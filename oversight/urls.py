from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from oversight.accounts import reviewer_views as team_views
from oversight.accounts.change_control_views import team_change_control_view
from oversight.core import views as core_views
from oversight.gateway.api import api as agent_api
from oversight.notifications import views as notification_views
from oversight.reviews.views import team_settings_view

urlpatterns = [
    path("", core_views.home, name="home"),
    path("overview/data.json", core_views.overview_data, name="overview-data"),
    path("overview/panels/", core_views.overview_panels_view, name="overview-panels"),
    path("healthz", core_views.healthz, name="healthz"),
    path("ping", core_views.ping, name="ping"),
    path("favicon.ico", core_views.favicon),
    path("metrics", core_views.metrics, name="metrics"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("agents/", include("oversight.agents.urls")),
    path("agents/<slug:slug>/policy/", include("oversight.policy.urls")),
    path("agents/<slug:slug>/releases/", include("oversight.releases.urls")),
    path("agents/<slug:slug>/behaviour/", include("oversight.incidents.diff_urls")),
    path("audit/", include("oversight.audit.urls")),
    path("", include("oversight.approvals.urls")),
    path("", include("oversight.rewind.urls")),
    path("killswitch/", include("oversight.killswitch.urls")),
    path("teams/<slug:slug>/", core_views.team_detail, name="team"),
    path(
        "teams/<slug:slug>/reviewers/", team_views.team_reviewer_add_view, name="team-reviewer-add"
    ),
    path(
        "teams/<slug:slug>/reviewers/<int:user_id>/remove/",
        team_views.team_reviewer_remove_view,
        name="team-reviewer-remove",
    ),
    path("teams/<slug:slug>/notifications/", include("oversight.notifications.urls")),
    path("teams/<slug:slug>/change-control/", team_change_control_view, name="team-change-control"),
    path("teams/<slug:slug>/recertification/", team_settings_view, name="team-reviews"),
    path("inbox/", include("oversight.notifications.inbox_urls")),
    path("links/<str:token>/", notification_views.decision_link_view, name="decision-link"),
    path("dev/outbox/", notification_views.outbox_view, name="dev-outbox"),
    path("settings/", include("oversight.accounts.urls")),
    path("recertification/", include("oversight.reviews.urls")),
    path("alerts/", include("oversight.monitoring.urls")),
    path("incidents/", include("oversight.incidents.urls")),
    path("api/v1/", agent_api.urls),
    path("admin/", admin.site.urls),
    *[
        # Former addresses of renamed pages (bookmarks, links in older inbox items and
        # emails): re-certification was "reviews", alerts were under "monitoring".
        path(old, RedirectView.as_view(pattern_name=new, permanent=True, query_string=True))
        for old, new in [
            ("reviews/", "reviews:list"),
            ("reviews/<slug:slug>/", "reviews:agent"),
            ("teams/<slug:slug>/reviews/", "team-reviews"),
            ("monitoring/", "monitoring:list"),
            ("monitoring/alerts/<int:pk>/", "monitoring:alert"),
        ]
    ],
]

# A refusal says why, in the words it was refused with (core/views.py).
handler403 = "oversight.core.views.permission_denied"
