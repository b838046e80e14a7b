"""The web console: a static single-page app served by the API at ``/console`` (docs/console.md)."""
