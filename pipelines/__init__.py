"""gridgov pipelines: read a project folder into DuckDB and run the stages.

Public API::

    from pipelines import connect, read_gdf, write_gdf
    from pipelines.run import run_project
"""
from pipelines.db import connect, read_gdf, read_table, write_gdf

__all__ = ["connect", "read_gdf", "read_table", "write_gdf"]
