from django.apps import AppConfig


class KillswitchConfig(AppConfig):
    name = "oversight.killswitch"
    label = "killswitch"
