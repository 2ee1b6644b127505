"""yibao studio: a local web page where a city team writes, runs and questions a policy.

``yibao studio CITY_FOLDER`` (``dsl/commands/studio.py``) serves it on 127.0.0.1. The files
in the folder stay the source of truth. ``workspace.py`` is the glue to the CLI's functions
(no web code), ``highlight.py`` colours the policy language from the grammar's keywords, and
``app.py`` is the page (NiceGUI, installed with ``pip install 'yibao[studio]'``).
"""
