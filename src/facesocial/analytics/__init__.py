"""Analytics over video streams (meeting attention: :mod:`facesocial.analytics.attention`)."""
