"""Reproduce the CIFAR-10 degradation study of He et al. 2015, section 4.2."""

__version__ = "0.1.0"
