from django.urls import path

from oversight.agents import token_views, tool_views, views

app_name = "agents"
urlpatterns = [
    path("", views.agent_list_view, name="list"),
    path("new/", views.agent_create, name="create"),
    path("<slug:slug>/", views.agent_detail, name="detail"),
    path("<slug:slug>/edit/", views.agent_edit, name="edit"),
    path("<slug:slug>/history/", views.agent_history_view, name="history"),
    path("<slug:slug>/access/", views.agent_access_grant_view, name="access-grant"),
    path("<slug:slug>/tokens/", token_views.token_create_view, name="token-create"),
    path(
        "<slug:slug>/tokens/<int:token_id>/rotate/",
        token_views.token_rotate_view,
        name="token-rotate",
    ),
    path(
        "<slug:slug>/tokens/<int:token_id>/revoke/",
        token_views.token_revoke_view,
        name="token-revoke",
    ),
    path(
        "<slug:slug>/tools/<int:pin_id>/accept/",
        tool_views.tool_pin_accept_view,
        name="tool-accept",
    ),
    path(
        "<slug:slug>/access/<int:user_id>/revoke/",
        views.agent_access_revoke_view,
        name="access-revoke",
    ),
]
