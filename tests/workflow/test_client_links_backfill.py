"""The data migration that links existing clients (workflow 0005): to their agency, and to every agency
that already has work for them; re-running it changes nothing."""

import importlib

import pytest
from django.db import connection

from polaris.accounts.models import ClientAgencyLink
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("workflow.migrations.0005_client_agency_links_backfill")


def run_backfill() -> None:
    with connection.cursor() as cursor:
        cursor.execute(backfill.LINK_SQL)


def pairs() -> set[tuple[str, str]]:
    return set(ClientAgencyLink.objects.values_list("client__username", "agency__slug"))


def test_links_clients_to_their_agency_and_to_agencies_with_their_work(
    make_task, make_plan, client_user, other_client, agency, other_agency, other_agent, agent
):
    ClientAgencyLink.objects.create(client=client_user, agency=other_agency)
    make_task(actor=other_agent, agency=other_agency, assignee=other_agent)  # B works for A's client
    make_plan(actor=agent)
    unserved = ClientFactory(username="uma-unserved", agency=None)
    ClientAgencyLink.objects.all().delete()  # the state before the migration: no links at all

    run_backfill()
    assert pairs() == {
        ("cleo-client", "north-star"),
        ("cleo-client", "southern-cross"),
        ("olga-other-client", "southern-cross"),
    }
    assert not ClientAgencyLink.objects.filter(client=unserved).exists()

    run_backfill()  # idempotent
    assert ClientAgencyLink.objects.count() == 3
