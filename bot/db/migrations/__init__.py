"""Alembic's script directory (``env.py`` and ``versions/``), found beside this file whatever
the working directory. A new revision: copy the newest file in ``versions/``, give it a new
``revision`` and set ``down_revision`` to the one it follows."""
