"""Image handling: file I/O (``srkit.image.io``), colour conversions and MATLAB-exact resizing.

Nothing is imported here so that ``import srkit.image.<module>`` stays cheap; import the
submodule you need.
"""
