"""The care-plan app's domain errors (each joins a family of ``polaris.errors``, which sets its status)."""

from polaris.errors import Conflict


class TemplateVersionInUse(Conflict):
    """A version a plan was made from is immutable: make the next version instead (409)."""

    error_code = "TEMPLATE_VERSION_IN_USE"
    default_message = (
        "A plan uses this template version, so it cannot change; create the next version "
        "(POST /plan-templates/{id}/versions) and migrate the plans to it."
    )
