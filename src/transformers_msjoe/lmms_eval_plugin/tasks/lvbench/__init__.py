"""The msjoe_lvbench task for lmms-eval (yaml + utils.py)."""
