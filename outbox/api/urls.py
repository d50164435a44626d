from django.urls import re_path

from .events import OutboxEventReplayView
from .feed import EventFeedView

urlpatterns = [
    re_path(r"^events/?$", EventFeedView.as_view(), name="workflow-event-feed"),
    # Trailing slash optional, like the rest of the API.
    re_path(
        r"^events/(?P<event_id>[^/]+)/replay/?$",
        OutboxEventReplayView.as_view(),
        name="workflow-event-replay",
    ),
]
