"""The report: results folders read into tables (``results``), the tables and intervals
(``tables``), what survives (``survival``), the human side (``human``), figures (``plots``) and
report.html (``html``)."""
