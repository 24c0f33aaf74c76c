"""Training: the loop (`train`), the learning-rate schedule and warm-up (`schedule`),
checkpoint and resume (`resume`), the choice of device and precision with GPU slot locks
(`devices`), the fp32 evaluation of a net on original images (`evaluation`) and the
training loss and error over fixed windows of iterations (`windows`).

Imports the nets, the data and the config; the probes, tables and command line sit above it.
"""
