"""gridgov geo: pure geospatial algorithms on GeoDataFrames and arrays.

Nothing in this package touches DuckDB, files or Streamlit.
"""
