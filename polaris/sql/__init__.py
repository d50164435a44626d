"""The fenced package: every hand-written SQL statement of the project lives here.

Plain ORM everywhere else. A statement lives here only when the ORM cannot say it (each module says why,
one line per statement). The ground imports no app, so a statement that names an app's table takes the
table and column names from the models its caller passes in (``Model._meta``), never from an import.
"""
