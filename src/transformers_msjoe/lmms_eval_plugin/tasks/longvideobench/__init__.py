"""The msjoe_longvideobench task for lmms-eval (yaml + utils.py)."""
