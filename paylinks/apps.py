from django.apps import AppConfig


class PaylinksConfig(AppConfig):
    name = "paylinks"
