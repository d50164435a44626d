from django.core.management.base import BaseCommand
from django.db import transaction

from polaris.accounts.services import agency_get_or_create, user_upsert
from workflow.models import Task
from workflow.services.action_plans import action_plan_activate, action_plan_create
from workflow.services.tasks import task_create, task_transition

# Development-only credentials, printed for the newcomer; never use this command in production.
DEMO_USERS = [
    ("demo-admin", "admin", "polaris-admin-demo"),
    ("demo-agent", "agency", "polaris-agent-demo"),
    ("demo-client", "client", "polaris-client-demo"),
]


class Command(BaseCommand):
    help = "Create a demo agency, an admin, an agency agent and a client, with tasks and plans (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        agency = agency_get_or_create(name="Demo Agency")
        users = {
            role: user_upsert(username=username, password=password, role=role, agency=agency)[0]
            for username, role, password in DEMO_USERS
        }
        agent, client = users["agency"], users["client"]
        if not Task.objects.filter(agency=agency).exists():
            self._seed_work(agent=agent, client=client, agency=agency)

        self.stdout.write(self.style.SUCCESS("Demo data ready. Logins (development only):"))
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {role:<7} {username:<12} password: {password}")

    def _seed_work(self, *, agent, client, agency) -> None:
        def new_task(title, task_type, **kwargs):
            return task_create(
                actor=agent,
                title=title,
                task_type=task_type,
                service_area="housing",
                client=client,
                agency=agency,
                assignee=agent,
                correlation_id="seed-demo",
                **kwargs,
            )

        plan = action_plan_create(actor=agent, title="Stable housing", client=client, agency=agency)
        intake = new_task("Housing intake", "intake", action_plan=plan, priority="high")
        assessment = new_task("Needs assessment", "assessment", action_plan=plan)
        review = new_task("Plan review", "review", action_plan=plan)
        new_task("Benefits check", "intake")
        action_plan_activate(action_plan_id=plan.pk, actor=agent)
        for task_id, targets, reason in [
            (intake.pk, ["in_progress", "completed"], ""),
            (assessment.pk, ["in_progress"], ""),
            (review.pk, ["blocked"], "Waiting for landlord reference"),
        ]:
            for target in targets:
                task_transition(task_id=task_id, target_state=target, actor=agent, reason=reason)
        action_plan_create(actor=agent, title="Employment support", client=client, agency=agency)
