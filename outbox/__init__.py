"""The transactional outbox: domain events, appended in the writer's transaction and dispatched after commit.

Every app depends on this vocabulary; it depends on no app. See ``docs/dispatch.md``.
"""
