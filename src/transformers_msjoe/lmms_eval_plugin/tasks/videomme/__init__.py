"""The msjoe_videomme and msjoe_videomme_long tasks for lmms-eval (yaml + utils.py)."""
