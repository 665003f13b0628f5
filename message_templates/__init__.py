"""Makes this folder the package `scheduler.message_templates` (mapped in pyproject.toml), so the
default templates ship inside every install; without this file an editable install cannot map it."""
