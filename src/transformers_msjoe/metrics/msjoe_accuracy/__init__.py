"""The `msjoe_accuracy` evaluate module (a package only so that wheels ship its script)."""
