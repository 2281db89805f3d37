"""Training and evaluation of model packages: plain torch/timm/numpy, no Django.

``data`` reads datasets (our ``labels.csv``, ODIR-5K's ``full_df.csv``, folder-per-class)
and caches them preprocessed exactly as inference does; ``trainer`` trains a timm model and
writes a package; ``evaluate`` scores packages; ``metrics`` and ``plots`` are the numbers
and figures; ``importer`` wraps an external checkpoint into a package.
"""
