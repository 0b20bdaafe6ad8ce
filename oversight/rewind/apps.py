from django.apps import AppConfig


class RewindConfig(AppConfig):
    name = "oversight.rewind"
    label = "rewind"
