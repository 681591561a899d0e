"""Services behind the app's editing pages (not pipeline stages).

:mod:`pipelines.services.planner` re-draws a community, moves and locks cells, checks and saves
a plan (the planner page and notebook 02); :mod:`pipelines.services.history` compares and
restores plans and writes realignment workbooks (the plan history page). Every write takes the
project lock (:mod:`pipelines.lock`), so a save never races a ``gridgov run``.
"""
