"""The peer the benchmarks measure Polaris beside: a task written the common Django way.

django-fsm-2 for the state machine, django-fsm-log for its StateLog rows, ``select_for_update`` in a
service, an outbox row written through the ORM by a ``post_transition`` receiver, and Celery tasks sent
through django-celery-outbox. Installed only by ``bench/peer_settings.py``; never part of the project.
"""
