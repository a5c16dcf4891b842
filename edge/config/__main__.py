"""``python -m edge.config``: print the documented example configuration (systemd/config.example.toml)."""

from edge.config.render import render_example

print(render_example(), end="")
