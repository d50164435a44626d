"""The report endpoints: answers from the rollups, scoping (RBAC), CSV, and bad parameters as 400s."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from tests.support.api import assert_envelope

from .history import breach_event, met_event, task_event

URL = "/api/workflow/reports/"
DAY = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
WINDOW = "from=2026-05-04&to=2026-05-10"


def _task(agency_id, *, created, closed=None, state="completed", breach=False, area="housing"):
    task_id = uuid.uuid4()
    events = [
        task_event(
            task_id=task_id,
            event_type="TaskCreated",
            sequence=1,
            at=created,
            agency_id=agency_id,
            new_state="new",
            service_area=area,
        )
    ]
    if closed is not None:
        events.append(
            task_event(
                task_id=task_id,
                event_type="TaskStateChanged",
                sequence=2,
                at=closed,
                agency_id=agency_id,
                old_state="new",
                new_state=state,
                service_area=area,
            )
        )
    if breach:
        events.append(
            breach_event(
                task_id=task_id, at=created + timedelta(hours=1), agency_id=agency_id, service_area=area
            )
        )
    elif closed is not None and state == "completed":
        events.append(met_event(task_id=task_id, at=closed, agency_id=agency_id, service_area=area))
    OutboxEvent.objects.bulk_create(events)


@pytest.fixture
def history(agency, other_agency):
    _task(agency.pk, created=DAY + timedelta(hours=1), closed=DAY + timedelta(hours=5))
    _task(agency.pk, created=DAY + timedelta(hours=2), closed=DAY + timedelta(days=1, hours=1), breach=True)
    _task(
        agency.pk,
        created=DAY + timedelta(hours=3),
        closed=DAY + timedelta(days=2),
        state="cancelled",
        area="health",
    )
    _task(agency.pk, created=DAY + timedelta(hours=4))  # still open
    _task(other_agency.pk, created=DAY + timedelta(hours=1), closed=DAY + timedelta(hours=2))
    assert outbox_dispatch(budget_seconds=30).dispatched == 12


def _rows(response):
    assert response.status_code == 200, response.content[:500]
    return response.json()["rows"]


def test_throughput_per_day_for_an_admin(history, admin_api):
    rows = _rows(admin_api.get(f"{URL}throughput?{WINDOW}"))
    assert len(rows) == 7
    assert rows[0] == {
        "bucket_start": "2026-05-04T00:00:00+00:00",
        "bucket_end": "2026-05-05T00:00:00+00:00",
        "created": 5,
        "completed": 2,
        "cancelled": 0,
    }
    assert (rows[1]["completed"], rows[2]["cancelled"]) == (1, 1)


def test_attainment_backlog_and_time_in_state(history, admin_api, agency):
    scoped = f"{WINDOW}&agency={agency.pk}"
    attainment = _rows(admin_api.get(f"{URL}sla-attainment?{scoped}"))
    assert [(r["met"], r["breached"], r["attainment"]) for r in attainment[:3]] == [
        (1, 0, 1.0),
        (0, 1, 0.0),
        (0, 0, None),
    ]
    backlog = _rows(admin_api.get(f"{URL}backlog-aging?{scoped}"))
    # End of Monday: three open (created 02:00, 03:00, 04:00); end of Tuesday: two; from Wednesday: one.
    assert [r["open_total"] for r in backlog] == [3, 2, 1, 1, 1, 1, 1]
    assert backlog[0]["age_0_1d"] == 3
    assert backlog[1]["age_0_1d"] == 0
    assert backlog[1]["age_1_3d"] == 2
    assert backlog[6]["age_3_7d"] == 1
    time_in_state = _rows(admin_api.get(f"{URL}time-in-state?{scoped}&service_area=housing"))
    monday_new = next(r for r in time_in_state if r["state"] == "new")
    assert (monday_new["exits"], monday_new["total_seconds"]) == (1, 4 * 3600.0)


def test_weeks_widen_to_whole_iso_weeks(history, admin_api):
    body = admin_api.get(f"{URL}throughput?from=2026-05-06&to=2026-05-06&bucket=week").json()
    assert (body["from"], body["to"], len(body["rows"])) == ("2026-05-04", "2026-05-10", 1)
    assert body["rows"][0]["created"] == 5


def test_agency_staff_see_their_agency_only(
    history, agent_api, other_agent_api, api_for, supervisor, other_agency
):
    assert _rows(agent_api.get(f"{URL}throughput?{WINDOW}"))[0]["created"] == 4
    assert _rows(other_agent_api.get(f"{URL}throughput?{WINDOW}"))[0]["created"] == 1
    body = api_for(supervisor).get(f"{URL}throughput?{WINDOW}").json()
    assert body["scope"] == "agency"
    assert body["rows"][0]["created"] == 4
    assert_envelope(agent_api.get(f"{URL}throughput?{WINDOW}&agency={other_agency.pk}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("report", ["sla-attainment", "throughput", "backlog-aging", "time-in-state"])
def test_clients_are_refused_and_anonymous_callers_too(report, client_api, anon_api):
    assert_envelope(client_api.get(f"{URL}{report}?{WINDOW}"), 403, "PERMISSION_DENIED")
    assert anon_api.get(f"{URL}{report}?{WINDOW}").status_code == 401


@pytest.mark.parametrize("how", ["format", "accept"])
def test_csv_exports_the_same_rows(history, admin_api, how):
    url = f"{URL}throughput?{WINDOW}"
    json_rows = _rows(admin_api.get(url))
    if how == "format":
        response = admin_api.get(url + "&format=csv")
    else:
        response = admin_api.get(url, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [{k: str(v) for k, v in row.items()} for row in json_rows] == table


def test_csv_cells_cannot_become_formulas():
    from reports.api.renderers import ReportCSVRenderer

    body = ReportCSVRenderer().render({"rows": [{"a": "=cmd()", "b": -3, "c": "@x", "d": None, "e": "+1"}]})
    assert body.decode().splitlines() == ["a,b,c,d,e", "'=cmd(),-3,'@x,,'+1"]


def test_errors_stay_json_when_csv_was_asked_for(admin_api):
    response = admin_api.get(f"{URL}throughput?from=2026-05-10&to=2026-05-04&format=csv")
    assert_envelope(response, 400, "INVALID_WINDOW")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("to=2026-05-04", "VALIDATION_ERROR"),  # from missing
        ("from=2026-13-01&to=2026-05-04", "VALIDATION_ERROR"),
        ("from=2026-05-10&to=2026-05-04", "INVALID_WINDOW"),
        ("from=2025-01-01&to=2026-05-04", "INVALID_WINDOW"),  # over 366 days
        ("from=0001-01-01&to=0001-01-02", "INVALID_WINDOW"),
        ("from=9999-12-30&to=9999-12-31", "INVALID_WINDOW"),
        (f"{WINDOW}&tz=Mars/Olympus", "VALIDATION_ERROR"),
        (f"{WINDOW}&tz=../../etc/passwd", "VALIDATION_ERROR"),
        (f"{WINDOW}&tz=Asia/Kolkata", "TIME_ZONE_NOT_SUPPORTED"),
        (f"{WINDOW}&bucket=month", "VALIDATION_ERROR"),
        (f"{WINDOW}&agency=nope", "VALIDATION_ERROR"),
        (f"{WINDOW}&service_area={'x' * 65}", "VALIDATION_ERROR"),
        (f"{WINDOW}&colour=red", "VALIDATION_ERROR"),
        (f"{WINDOW}&bucket=day&bucket=week", "VALIDATION_ERROR"),
    ],
)
def test_bad_parameters_are_400_with_a_code(admin_api, query, code):
    assert_envelope(admin_api.get(f"{URL}throughput?{query}"), 400, code)
