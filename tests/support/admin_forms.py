"""Posting Django admin change forms from tests: the inline formsets' management fields a browser sends."""

from typing import Any


def inline_management_data(browser: Any, url: str) -> dict[str, Any]:
    """The management-form fields (``…-TOTAL_FORMS`` and friends) of every inline on the change page at
    ``url``, as the page renders them: a POST without them is refused as a tampered form."""
    page = browser.get(url)
    data: dict[str, Any] = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
    return data
