"""Outgoing webhooks: ``transport`` (signing, the SSRF guard, one HTTP request) and ``delivery`` (the
delivery log: claim, attempt, retry, replay)."""
