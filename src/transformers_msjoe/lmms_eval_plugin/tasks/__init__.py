"""lmms-eval task folders (yaml + utils.py per benchmark), found by `--include_path`; not imported as Python."""
