"""Helpers every layer may use, with no srkit imports of their own (the bottom layer).

``files``: atomic writes (readers never see half a file); ``progress``: the progress bar of
long commands; ``machine``: the CPU and library versions a measured figure was taken on.
"""
