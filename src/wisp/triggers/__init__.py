"""Triggers: cron schedules (``cron``), trigger and rule CRUD (``service``), firing
(``fire``), the exactly-once scheduler (``scheduler``), assembled by ``system``."""
