"""Django-free inference core: model packages, decoding, fundus crop, quality gate, CAMs.

Import the submodules you need (``card`` needs only the standard library; the others need
torch). The Django side calls this package; this package never imports Django.
"""
