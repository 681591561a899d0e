"""gridgov Streamlit app from a source checkout: ``streamlit run app.py [-- --project DIR]``.

The app itself is ``app_pages/main.py`` (the entry script ``gridgov app`` runs, installed with
the package); this file only runs it, on every rerun.
"""
import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parent / "app_pages" / "main.py"), run_name="__main__")
