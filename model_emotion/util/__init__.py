"""Small helpers every room may use: names checked as data (``names``), progress lines (``progress``),
settings declared once (``settings``)."""
