import json
import time
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from polaris.sql.querysets import rows_counted_noted, rows_counted_up_to

MAX_PAGE = 2**63 - 1


# Estimates of the counts over the exact limit, per process, by the count's SQL and parameters: while one
# is fresh a page of that list runs no count at all (an estimate it stays; ``next`` is exact regardless).
ESTIMATE_SECONDS = 30.0
_ESTIMATES_KEPT = 1000
_estimates: dict[tuple, tuple[float, int]] = {}


def _estimated_rows(using: str, sql: str, params: tuple) -> int:
    """PostgreSQL's estimate of the rows the compiled query ``sql`` matches (its plan, not a scan; the
    statement compiled once for the estimate's key, the bounded count and this)."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):  # a driver that does not decode json
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _compiled(queryset: QuerySet) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def _estimate_key(queryset: QuerySet, compiled: tuple[str, tuple]) -> tuple:
    sql, params = compiled
    return (queryset.db, sql, tuple(map(str, params)))


def _estimate_fresh(key: tuple) -> int | None:
    found = _estimates.get(key)
    if found is None or time.monotonic() - found[0] >= ESTIMATE_SECONDS:
        return None
    return found[1]


def _estimate_keep(key: tuple, estimate: int) -> None:
    if len(_estimates) >= _ESTIMATES_KEPT:
        _estimates.clear()
    _estimates[key] = (time.monotonic(), estimate)


class StandardPagination(PageNumberPagination):
    """Page-number pagination; ``page_size`` is capped at ``max_page_size``.

    ``page`` and ``page_size`` are integers ≥ 1 (anything else is ``400 VALIDATION_ERROR``, as the schema
    declares). A page past the end is an empty page — ``200`` with ``results: []``, ``next: null`` and
    ``previous`` pointing at the last page — since whether a page exists depends on data, not on the
    request's form.

    A page costs the same however many rows match: it reads ``page_size + 1`` rows (the extra one says
    whether a next page exists), a first page that holds everything needs no count, and the count is
    exact up to ``API_EXACT_COUNT_LIMIT`` rows (counted no further) and PostgreSQL's estimate beyond —
    an exact ``COUNT(*)`` of a million-task agency would cost more than the page. An estimate is kept
    for ``ESTIMATE_SECONDS`` per process, and that list's pages meanwhile run no count. A queryset whose
    selector already counted its rows (``polaris.sql.querysets.rows_counted_note``: a task search, up to
    ``workflow.search.NARROW_MATCHES``) is not counted again: exact up to where it was counted, the
    estimate beyond.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    @staticmethod
    def _positive_int(raw: str, name: str) -> int:
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
            raise ValidationError({name: ["A positive integer is required."]})
        return int(raw)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        return min(self._positive_int(raw, self.page_size_query_param), self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size_used = page_size = self.get_page_size(request)
        raw = request.query_params.get(self.page_query_param)
        self.number = number = 1 if raw is None else self._positive_int(raw, self.page_query_param)
        offset = (number - 1) * page_size
        if number == 1:
            rows = self._rows(queryset, offset, page_size)
            self.count = len(rows) if not self.has_next else self._count(queryset, at_least=page_size + 1)[0]
        else:
            # Count first: a page past an exactly counted end is answered without reading at its offset.
            self.count, exact = self._count(queryset, at_least=0)
            if (exact and offset >= self.count) or offset + page_size >= MAX_PAGE:
                rows, self.has_next = [], False
            else:
                rows = self._rows(queryset, offset, page_size)
                if rows and not exact:
                    self.count = max(self.count, offset + len(rows) + self.has_next)
        self.past_end = not rows and number > 1
        return rows

    def _rows(self, queryset: Any, offset: int, page_size: int) -> list:
        rows = list(queryset[offset : offset + page_size + 1])
        self.has_next = len(rows) > page_size
        return rows[:page_size]

    def _count(self, queryset: Any, *, at_least: int) -> tuple[int, bool]:
        """The count and whether it is exact (else PostgreSQL's estimate, never below what is known)."""
        if not isinstance(queryset, QuerySet):
            return len(queryset), True
        limit = settings.API_EXACT_COUNT_LIMIT
        if (noted := rows_counted_noted(queryset)) is not None:
            counted, limit = noted
            if counted <= limit:
                return counted, True
        rows = queryset.order_by().values("pk")
        compiled = _compiled(rows)  # once: the estimate's key and the bounded count share it
        key = _estimate_key(rows, compiled)
        if (estimate := _estimate_fresh(key)) is not None:
            return max(estimate, at_least, limit + 1), False
        if noted is None:
            exact = rows_counted_up_to(rows.db, *compiled, limit + 1)
            if exact <= limit:
                return exact, True
        estimate = max(_estimated_rows(rows.db, *compiled), limit + 1)
        _estimate_keep(key, estimate)
        return max(estimate, at_least), False

    def _last_page(self) -> int:
        return max(1, -(-self.count // self.page_size_used))

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"]["description"] = (
            "Matching items: exact up to API_EXACT_COUNT_LIMIT (10,000 by default; a task search's up to "
            "the number its `search` parameter states), PostgreSQL's estimate beyond. `next` is always exact."
        )
        return response

    def get_next_link(self):
        if not self.has_next:
            return None
        return replace_query_param(self.request.build_absolute_uri(), self.page_query_param, self.number + 1)

    def get_previous_link(self):
        if self.number <= 1:
            return None
        url = self.request.build_absolute_uri()
        if self.past_end:
            return replace_query_param(url, self.page_query_param, self._last_page())
        if self.number - 1 == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.number - 1)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
            if parameter["name"] == self.page_query_param:
                parameter["description"] = (
                    "Page number (1-based). A page past the end is an empty page (200, results [])."
                )
            else:
                parameter["description"] = f"Results per page; values above {self.max_page_size} are capped."
        return parameters
