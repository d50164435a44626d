"""Routes of the plan-template API under ``/api/workflow/`` (trailing slash optional, as everywhere)."""

from django.urls import re_path

from .templates import (
    PlanTemplateDetailView,
    PlanTemplateListView,
    PlanTemplateMigrationView,
    PlanTemplateVersionCreateView,
)

ID = r"(?P<template_id>[^/]+)"

urlpatterns = [
    re_path(r"^plan-templates/?$", PlanTemplateListView.as_view(), name="plan-template-list"),
    re_path(rf"^plan-templates/{ID}/?$", PlanTemplateDetailView.as_view(), name="plan-template-detail"),
    re_path(
        rf"^plan-templates/{ID}/versions/?$",
        PlanTemplateVersionCreateView.as_view(),
        name="plan-template-versions",
    ),
    re_path(
        rf"^plan-templates/{ID}/migrations/?$",
        PlanTemplateMigrationView.as_view(),
        name="plan-template-migrations",
    ),
]
