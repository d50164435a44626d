"""The SLA app's Prometheus metric: records breached (running and at-risk clocks are read at scrape time)."""

from prometheus_client import Counter

SLA_RECORDS_BREACHED = Counter("sla_records_breached_total", "SLA records marked breached.")
