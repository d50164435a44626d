"""Regressions, one test per finding an outside client made: every /api/ answer is the
envelope (DEBUG on or off), the browsable API is off, probes are method-restricted, the schema declares
what the server enforces, every list validates its query string one way, the docs work offline and a
``createsuperuser`` is an admin for the API."""

import io
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from automation.models import Alert
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/workflow/tasks",
    "/api/workflow/action-plans",
    "/api/workflow/alerts",
    "/api/workflow/triggers",
    "/api/workflow/sla-configs",
    "/api/workflow/webhook-endpoints",
]
# Every list reads its query string through polaris.api.query_params.
VALIDATED_LISTS = LISTS


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture(scope="module")
def openapi(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


# --- every answer in the envelope ------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTS)
def test_unknown_format_is_a_404_envelope_on_every_list(admin_api, debug, path):
    assert_envelope(admin_api.get(path + "?format=xml"), 404, "NOT_FOUND")


@pytest.mark.parametrize("path", LISTS)
def test_browsable_api_is_off_and_a_browser_gets_json_not_500(admin_user, debug, path):
    browser = APIClient()
    browser.force_login(admin_user)
    response = browser.get(path, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert_envelope(browser.get(path + "?format=api"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "path",
    [
        "/api/no-such-thing",
        "/api/workflow/no-such-thing/",
        "/api/workflow/alerts/not-a-number/acknowledge",
        "/api/workflow/triggers/not-a-number/dry-run",
    ],
)
def test_unrouted_paths_and_non_integer_ids_are_envelopes_with_debug_on(admin_api, settings, path):
    settings.DEBUG = True
    assert_envelope(admin_api.get(path), 404, "NOT_FOUND")
    assert_envelope(admin_api.post(path, {}, format="json"), 404, "NOT_FOUND")


def test_options_on_the_docs_answers_allow_not_500(admin_api, debug):
    response = admin_api.options("/api/docs/")
    assert response.status_code == 200
    assert "GET" in response["Allow"]


def test_wrong_method_on_the_schema_is_a_405_envelope(admin_api, debug):
    body = assert_envelope(admin_api.post("/api/schema/", {}, format="json"), 405, "METHOD_NOT_ALLOWED")
    assert body["message"]
    assert_envelope(admin_api.get("/api/schema/?format=xml"), 404, "NOT_FOUND")


def test_unsafe_api_request_without_slash_is_an_envelope_not_a_debug_crash(admin_api, settings):
    settings.DEBUG = True
    assert_envelope(admin_api.post("/api/schema", {}, format="json"), 404, "NOT_FOUND")


def test_session_post_without_csrf_token_is_a_403_envelope(admin_user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    response = browser.post("/api/workflow/tasks", {"title": "t"}, format="json")
    assert_envelope(response, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_405_json_to_post_even_with_csrf_enforced(admin_user, debug, path):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    response = browser.post(path, {})
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error_code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_probes_refuse_every_other_method(client, method):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.generic(method, path).status_code == 405, (method, path)


def test_trace_on_the_api_is_a_405_envelope(admin_api, debug):
    assert_envelope(admin_api.generic("TRACE", "/api/workflow/tasks"), 405, "METHOD_NOT_ALLOWED")


# --- the schema is the truth -----------------------------------------------------------------------


def test_acknowledged_by_is_declared_nullable_and_comes_back_null(admin_api, openapi):
    Alert.objects.create(severity="warning", message="unacknowledged")
    item = admin_api.get("/api/workflow/alerts").json()["results"][0]
    assert item["acknowledged_by"] is None
    assert openapi["components"]["schemas"]["AlertOutput"]["properties"]["acknowledged_by"]["nullable"]


def _parameter(openapi, path, method, name):
    parameters = openapi["paths"][path][method]["parameters"]
    return next(parameter for parameter in parameters if parameter["name"] == name)


@pytest.mark.parametrize("path", LISTS)
def test_page_and_page_size_are_declared_positive(openapi, path):
    for name in ("page", "page_size"):
        assert _parameter(openapi, path + "/", "get", name)["schema"]["minimum"] == 1, name
    assert "past the end" in _parameter(openapi, path + "/", "get", "page")["description"]


@pytest.mark.parametrize("path", VALIDATED_LISTS)
def test_a_page_past_the_end_is_an_empty_page_as_documented(admin_api, path):
    body = admin_api.get(path + "?page=999").json()
    assert body["results"] == []
    assert body["next"] is None
    assert body["previous"].endswith("page=1")  # the last page there is


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
@pytest.mark.parametrize("name", ["page", "page_size"])
def test_page_and_page_size_below_one_or_not_integers_are_400(admin_api, name, value):
    for path in VALIDATED_LISTS:
        assert_envelope(admin_api.get(f"{path}?{name}={value}"), 400, "VALIDATION_ERROR")


def test_idempotency_key_format_is_declared(openapi):
    header = _parameter(openapi, "/api/workflow/tasks/", "post", "Idempotency-Key")
    assert header["schema"]["pattern"] == r"^[\x21-\x7e]{1,255}$"
    assert re.match(header["schema"]["pattern"], "order-42")
    assert not re.match(header["schema"]["pattern"], "with space")


def test_dry_run_declares_exactly_one_of_event_id_and_event(openapi):
    operation = openapi["paths"]["/api/workflow/triggers/{trigger_id}/dry-run/"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    component = openapi["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert component["oneOf"] == [{"required": ["event_id"]}, {"required": ["event"]}]


@pytest.mark.parametrize("path", VALIDATED_LISTS)
@pytest.mark.parametrize("query", ["ordering=nonexistent", "nonsense=1", "created_after=notadate"])
def test_unknown_or_invalid_query_parameters_are_400_on_every_list(admin_api, path, query):
    if path.endswith("tasks") and query.startswith("created_after"):
        pytest.skip("tasks has created_after: covered by the invalid-date case below")
    assert_envelope(admin_api.get(f"{path}?{query}"), 400, "VALIDATION_ERROR")


def test_an_invalid_filter_value_on_tasks_is_400(admin_api):
    assert_envelope(admin_api.get("/api/workflow/tasks?created_after=notadate"), 400, "VALIDATION_ERROR")
    assert_envelope(admin_api.get("/api/workflow/tasks?state=nonsense"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("path", VALIDATED_LISTS)
def test_empty_values_are_refused_the_same_way_on_every_list(admin_api, path):
    body = assert_envelope(admin_api.get(f"{path}?page_size="), 400, "VALIDATION_ERROR")
    assert "page_size" in body["details"]


def test_empty_filter_values_are_refused_on_tasks_too(admin_api):
    body = assert_envelope(admin_api.get("/api/workflow/tasks?state=&assignee="), 400, "VALIDATION_ERROR")
    assert set(body["details"]) == {"state", "assignee"}


# --- offline docs ----------------------------------------------------------------------------------


def test_api_docs_load_swagger_ui_from_the_project_not_a_cdn(admin_api, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    response = admin_api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [source for source in sources if source.endswith((".js", ".css", ".png"))]
    assert assets, html[:1000]
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in html.lower()


# --- a superuser is an admin -----------------------------------------------------------------------


def test_createsuperuser_makes_an_api_admin_who_sees_everything(monkeypatch, make_task, other_agent):
    from tests.factories import ClientFactory

    mine = make_task()
    theirs = make_task(
        actor=other_agent,
        agency=other_agent.agency,
        assignee=other_agent,
        client=ClientFactory(agency=other_agent.agency),
    )
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "pw-Polaris-123")
    call_command(
        "createsuperuser",
        "--no-input",
        "--username",
        "fresh-root",
        "--email",
        "r@x.test",
        stdout=io.StringIO(),
    )
    token = APIClient().post(
        "/api/auth/token/", {"username": "fresh-root", "password": "pw-Polaris-123"}, format="json"
    )
    assert token.status_code == 200, token.content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
    assert api.get("/api/auth/me").json()["role"] == "admin"
    ids = {item["id"] for item in api.get("/api/workflow/tasks").json()["results"]}
    assert {str(mine.pk), str(theirs.pk)} <= ids
    assert api.get("/api/workflow/triggers").status_code == 200
