"""Tables: DataFrame in, DataFrame out, no file I/O. One row per run (`runs`), Table 6 and
plain vs residual (`comparison`), the ImageNet-style family and both families side by side
(`families`), the paper's and other reproductions' published numbers as data with their
sources (`paper`), and markdown/HTML rendering (`text`).

A new table goes here. Imports only `config` and `results`.
"""
