"""The antispoofing service: passive checks, active liveness sessions, liveness-gated enrolment."""
