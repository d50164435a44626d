"""The bad-input gate (issue 14): a hand-made corpus of hostile requests against every route the API
has, DEBUG on and off, as an admin and as an agency agent. The bar: 0 answers outside the envelope and
0 5xx.

The corpus: every method on every route (real, foreign and malformed ids); for each operation with a
body, a NUL byte in each field, each field of a wrong type, a huge body, a deeply nested body, malformed
JSON, bytes that are not UTF-8, and wrong content types; hostile query strings on every list.
Each case is one request through Django's test client; failures are collected and reported together.
"""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from outbox.models import OutboxEvent
from tests.factories import ClientFactory
from workflow.services.action_plans import action_plan_create
from workflow.services.tasks import task_create

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
MALFORMED_IDS = ["0", "abc", "9" * 40, "00000000-0000-0000-0000-000000000000", "%00"]
WRONG_TYPES = [[], {}, 1e308, True, None, "x" * 5000, -(2**70), [{"a": [1]}]]
# Pages whose success body is not JSON (the OpenAPI document, Swagger UI) on GET/HEAD.
NON_JSON_PAGES = {"/api/schema/": "application/vnd.oai.openapi", "/api/docs/": "text/html"}
HOSTILE_QUERIES = [
    "page=0",
    "page=%00",
    "page_size=-5",
    "page_size=" + "9" * 40,
    "ordering=%00",
    "format=xml",
    "format=api",
    "state=%00",
    "created_after=notadate",
    "unknown=1",
    "q=" + "x" * 5000,
    "&".join(f"p{i}=1" for i in range(1200)),
    "%ff%fe=1",
]


@pytest.fixture(scope="module")
def openapi(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture(params=["admin", "agent"])
def caller(request, admin_user, agent):
    user = admin_user if request.param == "admin" else agent
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return api


@pytest.fixture
def ids(make_task, make_plan, other_agent):
    plan = make_plan()
    task = make_task(action_plan=plan)
    foreign_client = ClientFactory(agency=other_agent.agency)
    foreign_task = task_create(
        actor=other_agent,
        title="Theirs",
        task_type="intake",
        service_area="housing",
        client=foreign_client,
        agency=other_agent.agency,
        assignee=other_agent,
    )
    foreign_plan = action_plan_create(
        actor=other_agent, title="Theirs", client=foreign_client, agency=other_agent.agency
    )
    event = OutboxEvent.objects.filter(aggregate_id=task.pk).first()
    return {
        "task_id": [str(task.pk), str(foreign_task.pk)],
        "action_plan_id": [str(plan.pk), str(foreign_plan.pk)],
        "event_id": [str(event.pk)] if event is not None else [],
        "alert_id": [],
        "trigger_id": ["1"],
        "config_id": ["1"],
    }


def concrete_paths(template: str, ids: dict[str, list[str]]) -> list[str]:
    if "{" not in template:
        return [template]
    name = template.split("{", 1)[1].split("}", 1)[0]
    values = [*ids.get(name, []), *MALFORMED_IDS]
    paths = []
    for value in values:
        paths.extend(concrete_paths(template.replace("{" + name + "}", value, 1), ids))
    return paths


def check(response, method: str, path: str, label: str, failures: list[str]) -> None:
    status = response.status_code
    where = f"{label}: {method} {path[:120]} → {status}"
    if status >= 500:
        failures.append(f"{where} (5xx) {response.content[:200]!r}")
        return
    content_type = response.get("Content-Type", "")
    bare = path.split("?", 1)[0]
    if status < 400 and bare in NON_JSON_PAGES and content_type.startswith(NON_JSON_PAGES[bare]):
        return
    if method == "HEAD" or status in (204, 304) or (method == "OPTIONS" and not response.content):
        return
    if status == 301 and method in ("GET", "HEAD") and response.get("Location") == bare + "/":
        return  # Django's APPEND_SLASH for a safe request: the envelope would hide where the page is
    if status in (301, 302, 307, 308):
        failures.append(f"{where} (redirect to {response.get('Location')})")
        return
    if not content_type.startswith("application/json"):
        failures.append(f"{where} (not JSON: {content_type})")
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        failures.append(f"{where} (invalid JSON)")
        return
    if status >= 400 and not (
        isinstance(body, dict)
        and body.get("success") is False
        and isinstance(body.get("error_code"), str)
        and isinstance(body.get("message"), str)
        and isinstance(body.get("details"), dict)
    ):
        failures.append(f"{where} (not the envelope) {body!r:.200}")


def send(api, method: str, path: str, *, data=None, content_type: str = "application/json"):
    return api.generic(method, path, data=data if data is not None else b"", content_type=content_type)


def body_properties(openapi: dict, operation: dict) -> dict:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref")
    if not ref:
        return {}
    return openapi["components"]["schemas"][ref.rsplit("/", 1)[-1]].get("properties", {})


def sample_body(properties: dict) -> dict:
    body = {}
    for name, schema in properties.items():
        kind = schema.get("type")
        body[name] = {"integer": 1, "boolean": True, "array": [], "object": {}}.get(kind, "sample")
    return body


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_bad_input_corpus_gets_the_envelope_and_no_5xx(settings, openapi, caller, ids, debug):
    settings.DEBUG = debug
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute"},
    }
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000
    failures: list[str] = []
    templates = [*openapi["paths"], "/api/schema/", "/api/docs/", "/api/", "/api/nope", "/api/workflow/x/y/z"]
    sent = 0

    # Every method on every route, with real, foreign and malformed ids, with and without the slash.
    for template in templates:
        for path in concrete_paths(template, ids):
            for variant in {path, path.rstrip("/") or "/"}:
                for method in METHODS:
                    data = b"{}" if method in ("POST", "PUT", "PATCH") else None
                    check(send(caller, method, variant, data=data), method, variant, "route", failures)
                    sent += 1

    # Bodies: NUL bytes and wrong types in every field, huge, deep, malformed, not UTF-8, wrong types.
    for template, item in openapi["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            path = concrete_paths(template, ids)[0]
            verb = method.upper()
            properties = body_properties(openapi, operation)
            base = sample_body(properties)
            bodies: list[tuple[str, bytes, str]] = []
            for name in properties:
                bodies.append(
                    (f"NUL in {name}", json.dumps({**base, name: "a\x00b"}).encode(), "application/json")
                )
                for wrong in WRONG_TYPES:
                    bodies.append(
                        (
                            f"{name}={wrong!r:.20}",
                            json.dumps({**base, name: wrong}).encode(),
                            "application/json",
                        )
                    )
            bodies += [
                ("huge", json.dumps({"title": "x" * 2_000_000}).encode(), "application/json"),
                ("deep", b"[" * 50_000 + b"]" * 50_000, "application/json"),
                ("deep object", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "application/json"),
                ("malformed", b'{"title": ', "application/json"),
                ("not utf-8", b'{"title": "\xff\xfe"}', "application/json"),
                ("NUL bytes", b"\x00" * 64, "application/json"),
                ("array", b"[1, 2, 3]", "application/json"),
                ("scalar", b"42", "application/json"),
                ("text", b"title=x", "text/plain"),
                ("xml", b"<task><title>x</title></task>", "application/xml"),
                ("form", b"title=x&task_type=intake", "application/x-www-form-urlencoded"),
                ("multipart", b"--x\r\nbroken", "multipart/form-data; boundary=x"),
                ("no content type", b"{}", ""),
            ]
            for label, data, content_type in bodies:
                check(
                    send(caller, verb, path, data=data, content_type=content_type),
                    verb,
                    path,
                    label,
                    failures,
                )
                sent += 1

    # Hostile query strings on every GET.
    for template, item in openapi["paths"].items():
        if "get" not in item:
            continue
        path = concrete_paths(template, ids)[0]
        for query in HOSTILE_QUERIES:
            check(send(caller, "GET", f"{path}?{query}"), "GET", f"{path}?{query}", "query", failures)
            sent += 1

    # Hostile headers.
    for headers in (
        {"HTTP_IDEMPOTENCY_KEY": "x" * 300},
        {"HTTP_IDEMPOTENCY_KEY": ""},
        {"HTTP_X_CORRELATION_ID": "\x00" * 10},
        {"HTTP_ACCEPT": "application/xml"},
        {"HTTP_ACCEPT": "text/html"},
        {"HTTP_AUTHORIZATION": "Bearer not-a-token"},
        {"HTTP_AUTHORIZATION": "Basic Zm9vOmJhcg=="},
    ):
        for path in ("/api/workflow/tasks/", "/api/workflow/alerts/", "/api/auth/me/"):
            for method in ("GET", "POST"):
                response = caller.generic(
                    method, path, data=b"{}", content_type="application/json", **headers
                )
                check(response, method, path, f"headers {sorted(headers)}", failures)
                sent += 1

    assert sent > 1000
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:60])
