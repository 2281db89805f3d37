"""Django-free inference core: model packages, decoding, fundus crop, quality gate, CAMs.

Import the submodules you need; this package imports none of them. ``results`` (the result
shapes and labels), ``summary`` and ``card`` need only the standard library, and are all
that web processes may import; the others need numpy/cv2 and most need torch. The Django
side calls this package; this package never imports Django.
"""
