"""Tools for people working on message content (built on the domain code): the preview gallery."""
