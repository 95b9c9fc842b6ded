"""The GPU worker tier: the worker process, its device loop, the session runner and task.

Only `manage.py rungpuworker` imports this package. The web tier, the control worker and beat
never do: the session task is enqueued by name (webapp.play.services.SESSION_TASK), so neither
the model's libraries nor the media stack are loaded where no session runs. Not a Django app:
it owns no models (its rows are fleet.Worker and play.PlaySession).
"""
