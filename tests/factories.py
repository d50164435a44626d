"""Typed factory_boy factories for the domain; services are used where events matter."""

import factory
from factory.django import DjangoModelFactory

from polaris.accounts.models import Agency, ClientAgencyLink, User


class AgencyFactory(DjangoModelFactory[Agency]):
    class Meta:
        model = Agency
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Agency {n}")
    slug = factory.Sequence(lambda n: f"agency-{n}")


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.CLIENT
    password = factory.PostGenerationMethodCall("set_password", "pw-Polaris-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AdminFactory(UserFactory):
    role = User.Role.ADMIN
    is_staff = True
    is_superuser = True


class AgentFactory(UserFactory):
    role = User.Role.AGENCY
    agency = factory.SubFactory(AgencyFactory)


class SupervisorFactory(UserFactory):
    role = User.Role.SUPERVISOR
    agency = factory.SubFactory(AgencyFactory)


class ClientFactory(UserFactory):
    """A client registered with (and linked to) an agency; ``agency=None``: an unserved client."""

    role = User.Role.CLIENT
    agency = factory.SubFactory(AgencyFactory)

    @factory.post_generation
    def _link(obj, create, extracted, **kwargs):
        if create and obj.agency_id is not None:
            ClientAgencyLink.objects.get_or_create(client=obj, agency_id=obj.agency_id)
