"""A query parameter given twice (``?state=new&state=blocked``) is a 400 naming it on every list, never
one value silently winning (issue #28). Repeats are refused, not merged: comma lists may come later."""

import pytest

from tests.api.test_outside_clients import VALIDATED_LISTS
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", VALIDATED_LISTS)
def test_a_repeated_parameter_is_a_400_on_every_list(admin_api, path):
    body = assert_envelope(admin_api.get(f"{path}?page_size=5&page_size=6"), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"page_size"}
    assert "2 times" in body["details"]["page_size"][0]


def test_a_repeated_filter_on_tasks_names_it(admin_api):
    body = assert_envelope(
        admin_api.get("/api/workflow/tasks?state=new&state=blocked"), 400, "VALIDATION_ERROR"
    )
    assert set(body["details"]) == {"state"}
    assert admin_api.get("/api/workflow/tasks?state=new").status_code == 200
