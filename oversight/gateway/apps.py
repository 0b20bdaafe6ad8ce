from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "oversight.gateway"
    label = "gateway"
