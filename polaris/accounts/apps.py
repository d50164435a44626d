from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "polaris.accounts"
    label = "accounts"
    verbose_name = "Accounts"
