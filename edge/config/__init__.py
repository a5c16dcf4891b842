"""The daemon's configuration, the one vocabulary of every setting.

``setting.py`` defines how a setting is declared (default, doc, bounds, choices) and checked;
``schema.py`` holds every section (one frozen dataclass per area, which the components take as
they are); ``loader.py`` reads TOML files and ``--set`` overrides with messages naming the file,
line and key; ``render.py`` writes a configuration back as TOML and renders the documented example
(``python -m edge.config > systemd/config.example.toml``).
"""
