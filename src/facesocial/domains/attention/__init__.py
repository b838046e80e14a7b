"""Meeting attention analytics: meetings, participants, alerts, summaries, live and recorded video."""
