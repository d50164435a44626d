from django.core.paginator import Page
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.utils.urls import replace_query_param

MAX_PAGE = 2**63 - 1


class StandardPagination(PageNumberPagination):
    """Page-number pagination; ``page_size`` is capped at ``max_page_size``.

    ``page`` and ``page_size`` are integers ≥ 1 (anything else is ``400 VALIDATION_ERROR``, as the schema
    declares). A page past the end is an empty page — ``200`` with ``results: []``, ``next: null`` and
    ``previous`` pointing at the last page — since whether a page exists depends on data, not on the
    request's form.
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
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        raw = request.query_params.get(self.page_query_param)
        number = 1 if raw is None else self._positive_int(raw, self.page_query_param)
        self.request = request
        if number <= paginator.num_pages:
            self.page = paginator.page(number)
        else:
            self.page = Page([], number, paginator)
        return list(self.page)

    def get_next_link(self):
        if self.page.number >= self.page.paginator.num_pages:
            return None
        return super().get_next_link()

    def get_previous_link(self):
        if self.page.number <= 1:
            return None
        if self.page.number > self.page.paginator.num_pages:
            url = self.request.build_absolute_uri()
            return replace_query_param(url, self.page_query_param, self.page.paginator.num_pages)
        return super().get_previous_link()

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
