"""What the FAQ owners need: questions, outcomes, the unanswered list, thumbs down, latency, cost.

`build_report` (report.py) reads the database through `queries.py` and groups the unanswered
questions by similarity (`grouping.py`); `text.py` prints it for `python -m faqbot report`, the
API returns it as JSON (`GET /api/analytics`) and `/admin` draws it (faqbot/web/admin_page.py).
"""

from faqbot.analytics.report import Report, build_report, parse_since

__all__ = ["Report", "build_report", "parse_since"]
