"""Load tools built on the domain code (not on the local cloud): the scale model of the month-end burst."""
