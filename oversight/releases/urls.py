from django.urls import path

from oversight.releases import replay_views, rollout_views, views

app_name = "releases"
urlpatterns = [
    path("", views.release_list_view, name="list"),
    path("compare/", views.release_compare_view, name="compare"),
    path("<int:version>/", views.release_detail_view, name="detail"),
    path("<int:version>/rollback/", views.release_rollback_view, name="rollback"),
    path("<int:version>/rollout/", rollout_views.rollout_start_view, name="rollout-start"),
    path("<int:version>/rollout/panel/", rollout_views.rollout_panel_view, name="rollout-panel"),
    path("rollouts/<int:pk>/<slug:step>/", rollout_views.rollout_step_view, name="rollout-step"),
    path("<int:version>/replay/", replay_views.release_replay_view, name="replay"),
]
