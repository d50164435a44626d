"""``{% ops_dashboard %}``: the operations dashboard on the admin index (data from ``ops.dashboard``)."""

from django import template

from ops.dashboard import BAR_MAX_WIDTH, dashboard_data

register = template.Library()

LABEL_WIDTH = 110  # px: the label column left of the bars


@register.inclusion_tag("ops/dashboard.html")
def ops_dashboard() -> dict:
    return {
        "data": dashboard_data(),
        "label_width": LABEL_WIDTH,
        "bar_x": LABEL_WIDTH + 6,
        "chart_width": LABEL_WIDTH + 6 + BAR_MAX_WIDTH + 60,
    }
