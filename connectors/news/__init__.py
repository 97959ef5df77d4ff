"""Municipal news: the ``news`` connector type, ``GET /v1/news`` and ``/v1/news/{id}``."""
