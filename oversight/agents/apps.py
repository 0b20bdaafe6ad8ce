from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "oversight.agents"
    label = "agents"
