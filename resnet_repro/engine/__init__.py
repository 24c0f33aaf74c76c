"""Training: the loop (`train`) and the host work around each step that the benchmark runs too
(`loop`), the step itself (`step`), the learning-rate schedule and warm-up (`schedule`),
checkpoint and resume (`resume`), the choice of device and precision with its numeric
switches (`devices`), one GPU slot per job by lock file (`gpu_slots`), rough CPU times
(`cpu_cost`), the fp32 evaluation of a net on original images (`evaluation`) and the training
loss and error over fixed windows of iterations (`windows`).

Imports the nets, the data and the config; the probes, tables and command line sit above it.
"""
