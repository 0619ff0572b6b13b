"""The learned lossy image codec (Ballé et al. 2017/2018, gain units of Cui et al. 2021), its training and
its files (see README.md). :class:`~.model.ImageCodec` holds the coding dataflow; :mod:`.image_file` only the file.
"""
