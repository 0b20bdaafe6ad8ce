from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "oversight.approvals"
    label = "approvals"
