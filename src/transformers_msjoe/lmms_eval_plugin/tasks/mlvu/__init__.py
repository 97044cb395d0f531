"""The msjoe_mlvu task for lmms-eval (yaml + utils.py)."""
