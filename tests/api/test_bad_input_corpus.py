"""The bad-input gate: a hand-made corpus of hostile requests against every route the API
has, DEBUG on and off, as an admin and as an agency agent. The bar: 0 answers outside the envelope and
0 5xx.

The corpus: every method on every route, with real, foreign (another agency's, or no such row) and
malformed ids for every id (tasks, plans, events, alerts, triggers, SLA configs, webhook endpoints and
deliveries, each a stored row); for each operation with a body, a NUL byte in each field, nested ones too
(a trigger's actions and their params, a bulk request's params and filter, object keys), each field of a
wrong type, a huge body, a deeply nested body, malformed JSON, bytes that are not UTF-8, and wrong
content types; hostile query strings on every list. Bodies go first, while every stored row still exists;
the route sweep (which DELETEs some) last. Each case is one request through Django's test client;
failures are collected and reported together.

Bounded: about 4,000 requests per persona and DEBUG setting; the four runs took 40 to 42 s in all here
(2 cores, 2026-12-05), under the timeout below.
"""

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from automation.alerts import alert_raise
from automation.models import Alert, WebhookDelivery
from automation.services import trigger_create, trigger_delete
from automation.webhooks.endpoints import webhook_endpoint_create, webhook_endpoint_delete
from careplans.services.templates import plan_template_create
from outbox.models import OutboxEvent
from routing.models import RoutingRule
from sla.configs import sla_config_create
from sla.models import SLAConfig, SLARepair
from tests.factories import ClientFactory
from workflow.services.action_plans import action_plan_create
from workflow.services.checklists import checklist_items_add
from workflow.services.saved_views import saved_view_create
from workflow.services.tasks import task_create

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db, pytest.mark.timeout(240)]

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
    api.persona = request.param  # type: ignore[attr-defined]
    return api


@pytest.fixture
def ids(make_task, make_plan, agent, other_agent):
    """For each path parameter: the ids of stored rows (the caller's and another agency's, where rows have
    an agency) and of rows that no longer exist."""
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
    event = OutboxEvent.objects.filter(aggregate_id=task.pk).earliest("sequence")
    foreign_event = OutboxEvent.objects.filter(aggregate_id=foreign_task.pk).earliest("sequence")
    alert = alert_raise(severity=Alert.Severity.WARNING, message="Ours", event=event)
    foreign_alert = alert_raise(severity=Alert.Severity.WARNING, message="Theirs", event=foreign_event)
    trigger = trigger_create(
        name="Corpus trigger",
        event_type="TaskCreated",
        predicate='task_type == "intake"',
        actions=[{"type": "emit_alert", "params": {"message": "New intake $task_id"}}],
        agency_id=agent.agency_id,
    )
    foreign_trigger = trigger_create(
        name="Their trigger", event_type="TaskCreated", agency_id=other_agent.agency_id
    )
    gone_trigger = trigger_create(name="Gone trigger", event_type="TaskCreated")
    trigger_delete(trigger_id=gone_trigger.pk)
    config = sla_config_create(actor=None, name="Corpus SLA", target_minutes=60, task_type="corpus")
    gone_config = sla_config_create(actor=None, name="Gone SLA", target_minutes=60, task_type="gone")
    SLAConfig.objects.filter(pk=gone_config.pk).delete()
    # Loopback: the SSRF guard refuses it at once, so a ping or a delivery never leaves the machine.
    endpoint, _ = webhook_endpoint_create(name="Corpus hook", url="http://127.0.0.1/hook")
    gone_endpoint, _ = webhook_endpoint_create(name="Gone hook", url="http://127.0.0.1/gone")
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event=event, status=WebhookDelivery.Status.FAILED, attempts=1
    )
    gone_delivery = WebhookDelivery.objects.create(endpoint=gone_endpoint, event=event)
    webhook_endpoint_delete(endpoint_id=gone_endpoint.pk)  # its deliveries go with it
    blueprints = [{"key": "intake", "title": "Intake", "task_type": "intake"}]
    template = plan_template_create(actor=None, agency=agent.agency, name="Corpus", blueprints=blueprints)
    foreign_template = plan_template_create(
        actor=None, agency=other_agent.agency, name="Theirs", blueprints=blueprints
    )
    view = saved_view_create(actor=agent, name="Corpus view", filter={"state": "new"}, shared=True)
    foreign_view = saved_view_create(actor=other_agent, name="Their view", filter={})
    (item,) = checklist_items_add(task, [{"text": "Ours"}], actor=None)
    (foreign_item,) = checklist_items_add(foreign_task, [{"text": "Theirs"}], actor=None)
    absent = str(uuid.uuid4())
    repair = SLARepair.objects.create(
        change={"kind": "recompute"}, scope={"open": True}, as_of=task.created_at
    )
    rule = RoutingRule.objects.create(agency_id=agent.agency_id, name="Corpus rule")
    foreign_rule = RoutingRule.objects.create(agency_id=other_agent.agency_id, name="Their rule")
    return {
        "template_id": [str(template.pk), str(foreign_template.pk), str(foreign_template.pk + 1000)],
        "task_id": [str(task.pk), str(foreign_task.pk), absent],
        "item_id": [str(item.pk), str(foreign_item.pk), absent],
        "action_plan_id": [str(plan.pk), str(foreign_plan.pk), absent],
        "event_id": [str(event.pk), str(foreign_event.pk), absent],
        "alert_id": [str(alert.pk), str(foreign_alert.pk), str(foreign_alert.pk + 1000)],
        "trigger_id": [str(trigger.pk), str(foreign_trigger.pk), str(gone_trigger.pk)],
        "config_id": [str(config.pk), str(gone_config.pk)],
        "repair_id": [str(repair.pk), absent],
        "endpoint_id": [str(endpoint.pk), str(gone_endpoint.pk)],
        "delivery_id": [str(delivery.pk), str(gone_delivery.pk)],
        # Client links: our client and theirs, and no such user; our agency, theirs, and none.
        "user_id": [str(task.client_id), str(foreign_client.pk), str(foreign_client.pk + 1000)],
        "agency_id": [str(agent.agency_id), str(other_agent.agency_id), absent],
        "client_id": [str(foreign_client.pk), str(other_agent.pk), "999999"],
        "view_id": [str(view.pk), str(foreign_view.pk), absent],
        "rule_id": [str(rule.pk), str(foreign_rule.pk), absent],
    }


def test_every_id_parameter_has_stored_rows(openapi, ids):
    # A new id-taking route without rows here would be probed with malformed ids only.
    names = {
        segment[1:-1] for path in openapi["paths"] for segment in path.split("/") if segment.startswith("{")
    }
    assert names <= set(ids), names - set(ids)
    assert all(len(values) >= 2 for values in ids.values())


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


def _resolve(openapi: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


STRING_SAMPLES = {"uuid": "00000000-0000-4000-8000-000000000000", "date-time": "2026-01-01T00:00:00Z"}


def sample_value(openapi: dict, schema: dict, depth: int = 0) -> Any:
    """A plausible value for ``schema``, nested objects and arrays filled in (an array of alternatives
    gets one item of each: a trigger's actions, every action type with its params)."""
    schema = _resolve(openapi, schema)
    alternatives = schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf")
    if "enum" in schema:
        return schema["enum"][0]
    if depth > 6:
        return None
    if "properties" in schema or schema.get("type") == "object":
        properties = dict(schema.get("properties", {}))
        # "exactly one of" (``oneOf: [{required: [a]}, {required: [b]}]``): send the first only.
        others = [name for alt in (schema.get("oneOf") or [])[1:] for name in alt.get("required", [])]
        return {
            name: sample_value(openapi, sub, depth + 1)
            for name, sub in properties.items()
            if name not in others
        }
    if alternatives and not schema.get("type"):
        return sample_value(openapi, alternatives[0], depth + 1)
    if schema.get("type") == "array":
        items = _resolve(openapi, schema.get("items", {}))
        branches = items.get("oneOf") or [items]
        return [sample_value(openapi, branch, depth + 1) for branch in branches]
    kind = schema.get("type")
    if kind == "string":
        return STRING_SAMPLES.get(schema.get("format", ""), "sample")
    return {"integer": 1, "number": 1.5, "boolean": True}.get(kind)


def sample_bodies(openapi: dict, operation: dict) -> list[Any]:
    """One plausible body per top-level alternative (a bulk request: transition, assign, update)."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "schema" not in content:
        return []
    schema = _resolve(openapi, content["schema"])
    branches = schema.get("oneOf") if "properties" not in schema else None
    return [sample_value(openapi, branch) for branch in branches or [schema]]


def nul_variants(body: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """``body`` with a NUL byte put in one place at a time: every string anywhere in it, nested ones too,
    and a new key in every object."""
    if isinstance(body, dict):
        yield f"NUL key in {where or 'body'}", {**body, "k\x00": "v"}
        for key, value in body.items():
            for label, variant in nul_variants(value, f"{where}.{key}" if where else key):
                yield label, {**body, key: variant}
    elif isinstance(body, list):
        for index, value in enumerate(body):
            for label, variant in nul_variants(value, f"{where}[{index}]"):
                changed = copy.copy(body)
                changed[index] = variant
                yield label, changed
    elif isinstance(body, str):
        yield f"NUL in {where}", body[:3] + "\x00" + body[3:]


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
    nested_nul = 0

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
            # NUL bytes deeper down: in plausible bodies, one string (or one new key) at a time.
            for plausible in sample_bodies(openapi, operation):
                for label, variant in nul_variants(plausible):
                    bodies.append((label, json.dumps(variant).encode(), "application/json"))
                    nested_nul += "." in label or "[" in label
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

    # Last: every method on every route, with real, foreign and malformed ids, with and without the slash;
    # DELETE after every other method on every route, so the sub-routes of a stored row see it stored.
    answered: dict[tuple[str, str], int] = {}
    for methods in ([method for method in METHODS if method != "DELETE"], ["DELETE"]):
        for template in templates:
            for path in concrete_paths(template, ids):
                for variant in {path, path.rstrip("/") or "/"}:
                    for method in methods:
                        data = b"{}" if method in ("POST", "PUT", "PATCH") else None
                        response = send(caller, method, variant, data=data)
                        check(response, method, variant, "route", failures)
                        answered[(method, variant)] = response.status_code
                        sent += 1

    assert sent > 1000
    assert nested_nul > 50  # the trigger's actions and params, the bulk shapes' params and filter
    if caller.persona == "admin":
        # The stored rows were found through their sub-routes (not 404: the corpus reached the views' logic).
        for method, path in [
            ("POST", f"/api/workflow/alerts/{ids['alert_id'][0]}/acknowledge/"),
            ("POST", f"/api/workflow/triggers/{ids['trigger_id'][0]}/dry-run/"),
            ("POST", f"/api/workflow/triggers/{ids['trigger_id'][0]}/backtest/"),
            ("GET", f"/api/workflow/sla-configs/{ids['config_id'][0]}/"),
            ("GET", f"/api/workflow/webhook-endpoints/{ids['endpoint_id'][0]}/deliveries/"),
            ("POST", f"/api/workflow/webhook-endpoints/{ids['endpoint_id'][0]}/test/"),
            ("POST", f"/api/workflow/webhook-deliveries/{ids['delivery_id'][0]}/redeliver/"),
            ("POST", f"/api/workflow/events/{ids['event_id'][0]}/replay/"),
        ]:
            assert answered[(method, path)] != 404, (method, path)
    assert not failures, f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures[:60])
